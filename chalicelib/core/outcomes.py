"""What a missing item or a failed write condition means to the caller: one way each, for every service.

    job = found(store.get(ctx.org_id, job_id), "job", job_id)   # NotFound("no job <id>") when None

    commit_or_raise(tx, agent=lambda: NotFound(f"agent {agent_id} not found or not active"))
                                  # the write called "agent" failed its condition: that error instead

Every read is scoped to the caller's organization, so another org's item is
missing too: 404, never 403 (docs/ARCHITECTURE.md). A failed condition of a
write with no error given is re-raised as the TxFailed it was.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, TypeVar

from chalicelib.core.errors import NotFound

if TYPE_CHECKING:
    from chalicelib.core.tx import Tx

T = TypeVar("T")


def found(value: T | None, kind: str, entity_id: str) -> T:
    """`value`, or NotFound("no <kind> <id>") when it is None."""
    if value is None:
        raise NotFound(f"no {kind} {entity_id}")
    return value


def commit_or_raise(tx: "Tx", **errors: Callable[[], Exception]) -> None:
    """Commit `tx`; when the write named `name` failed its condition, raise `errors[name]()` instead."""
    from chalicelib.core.tx import TxFailed

    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name in errors:
            raise errors[failed.name]() from None
        raise
