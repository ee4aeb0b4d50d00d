"""What a named write's failed condition means to the caller, said once per service call.

    commit_or_raise(tx, agent=lambda: NotFound(f"agent {agent_id} not found or not active"))
                                  # the write called "agent" failed its condition: that error instead

A failed condition of a write with no error given is re-raised as the TxFailed
it was. (Load-or-404 is core/lookup.py's `found`.)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from chalicelib.core.tx import Tx


def commit_or_raise(tx: "Tx", **errors: Callable[[], Exception]) -> None:
    """Commit `tx`; when the write named `name` failed its condition, raise `errors[name]()` instead."""
    from chalicelib.core.tx import TxFailed

    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name in errors:
            raise errors[failed.name]() from None
        raise
