"""Deferring a handler's one DynamoDB write, so that it commits together with another item.

Used by core/idempotency.py: a first idempotent call runs its handler inside
`deferring()`; the handler's single write (a transaction, or one put, update
or delete; what `Tx.commit()` issues) is not sent but kept, and answers as a
successful write would. The caller then sends it in one TransactWriteItems
with the idempotency record, so the change and its record commit together.

Deferring is only sound when that write is the handler's last AWS call and
nothing needs its result, so anything else raises NotDeferrable, before any
call is sent: a second write, an update that must return the new item, a
batch write, and any AWS call at all (a read, an SQS send) after the write
was taken. The caller then runs the handler again the ordinary way; nothing
was written, so that is safe.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

MAX_TRANSACTION_ITEMS = 100


class NotDeferrable(Exception):
    """This handler's writes cannot be deferred; nothing was sent."""


class Deferral:
    def __init__(self) -> None:
        self.ops: list[Any] | None = None  # the taken write, as transaction operations

    def take(self, ops: list[Any], reason: str | None = None) -> None:
        if reason is not None:
            raise NotDeferrable(reason)
        if self.ops is not None:
            raise NotDeferrable("a second write")
        if len(ops) >= MAX_TRANSACTION_ITEMS:
            raise NotDeferrable("no room for one more item in the transaction")
        self.ops = list(ops)


_current: contextvars.ContextVar[Deferral | None] = contextvars.ContextVar("deferral", default=None)


def active() -> Deferral | None:
    return _current.get()


@contextlib.contextmanager
def deferring() -> Iterator[Deferral]:
    """Within: the first DynamoDB write is kept in the yielded Deferral instead of being sent."""
    deferral = Deferral()
    token = _current.set(deferral)
    try:
        yield deferral
    finally:
        _current.reset(token)


def _after_write_guard(**_: Any) -> None:
    """botocore before-call hook: no AWS call may follow a taken write (it would run before the write)."""
    deferral = _current.get()
    if deferral is not None and deferral.ops is not None:
        raise NotDeferrable("an AWS call after the write")


def install(session: Any) -> None:
    """Guard every client of `session` (clients.session() calls this once, before any client exists)."""
    session.events.register_first("before-call.*.*", _after_write_guard)
