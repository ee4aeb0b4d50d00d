"""The unit of work: named writes, their audit events and outbox events, committed once.

    tx = ctx.tx()
    tx.check("agent", agents_store.active_check(org, agent_id))
    tx.put("instance", instances_store.put(item))
    tx.audit("instance", instance_id, "created", {"agentId": agent_id})
    tx.emit("instance:created", data, agent_id=agent_id)
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name == "agent": raise ValidationError.field("agentId", ...)
        raise

Each write has a name; a failed condition is reported by that name, never by
its position in a list. One write commits as a single-item call (cheaper and
faster than a transaction); two or more as one TransactWriteItems (at most
100). Audit events and outbox events always ride in the same commit as the
change they describe, so an event exists if and only if the change does.

This module's `commit` is the one path by which anything is written to
DynamoDB (tests/unit/test_one_write_path.py scans for any other). Modes:

- atomic (`ctx.tx()`): the above.
- bulk (`ctx.bulk()`): unconditional puts with no atomicity, any number,
  written with BatchWriteItem (25 per call): log entries, patch events and
  their outbox items, settings in bulk.
- one Update whose new item is the answer (`commit_returning()`).
- staged (an idempotent POST, core/idempotency.py): `commit()` sends nothing;
  the writes are handed to the request's `Staging`, and the pipeline commits
  them after the service returns, in one TransactWriteItems with the
  idempotency record. A second commit, or a bulk unit of work, in that mode
  raises NotStageable before anything is written.

Audit and outbox writers are handed in (`Writers`), so this module imports
nothing outside core and chalicelib.aws; `DEFAULT_WRITERS` is the one place
they are composed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Union

from chalicelib.aws import dynamo
from chalicelib.core import audit, outbox

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx

# A transaction (or a write to an item transactions also touch) met another
# one: safe to repeat. Re-exported so services need no aws import.
TransactionConflict = dynamo.TransactionConflict
retry_conflicts = dynamo.retry_conflicts

Write = Union[dynamo.Put, dynamo.Update, dynamo.Delete, dynamo.ConditionCheck]
MAX_ITEMS = 100  # TransactWriteItems' limit


class TxFailed(Exception):
    """The condition of the write called `name` was false; `item` is its old value when DynamoDB returned it."""

    def __init__(self, name: str, item: dict[str, Any] | None = None, names: list[str] | None = None):
        super().__init__(f"condition of {name!r} failed")
        self.name = name
        self.item = item
        self.names = names or [name]  # every write whose condition failed (a transaction reports each)


class NotStageable(Exception):
    """This service's writes cannot be staged for an idempotent commit (nothing was written)."""


@dataclass(frozen=True)
class Writers:
    """How an audit event and an outbox event become writes (injected into every unit of work)."""

    audit: Callable[..., Write]   # (org_id, entity_type, entity_id, action, actor, trace_id, details)
    event: Callable[..., Write]   # (org_id, event, data, agent_id=, connection_id=)


DEFAULT_WRITERS = Writers(audit=audit.audit_put, event=outbox.event_put)


class Staging:
    """An idempotent request's staged commit: the one commit its service made, not yet sent."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, Write]] | None = None

    def take(self, writes: list[tuple[str, Write]]) -> None:
        if self.writes is not None:
            raise NotStageable("a second commit")
        if len(writes) >= MAX_ITEMS:
            raise NotStageable("no room for the idempotency record in the transaction")
        self.writes = list(writes)

    def unit_of_work(self, ctx: "Ctx") -> "Tx":
        """What `ctx.tx()` builds while this staging is the request's."""
        return Tx(ctx, staging=self)


class Tx:
    def __init__(self, ctx: "Ctx", writers: Writers = DEFAULT_WRITERS, *, bulk: bool = False,
                 staging: Staging | None = None):
        self.ctx = ctx
        self.writers = writers
        self.bulk = bulk
        self.staging = staging
        self._writes: list[tuple[str, Write]] = []
        self._committed = False

    # --- what the unit of work holds ----------------------------------------

    def add(self, name: str, write: Write) -> "Tx":
        if any(existing == name for existing, _ in self._writes):
            raise ValueError(f"a write called {name!r} is already in this unit of work")
        if self.bulk:
            if not isinstance(write, dynamo.Put) or write.condition:
                raise ValueError("a bulk unit of work holds unconditional puts only (BatchWriteItem)")
        elif len(self._writes) >= MAX_ITEMS:
            raise ValueError(f"a unit of work holds at most {MAX_ITEMS} writes")
        self._writes.append((name, write))
        return self

    put = update = delete = check = add  # read as what the write is; all named the same way

    def audit(self, entity_type: str, entity_id: str, action: str, details: dict[str, Any] | None = None,
              name: str | None = None) -> "Tx":
        """The audit event of this change, attributed to the context's actor and trace (and a person's email)."""
        principal = self.ctx.principal
        if principal is not None and principal.email:
            details = {**(details or {}), "actorEmail": principal.email}
        return self.add(name or f"audit:{entity_type}:{entity_id}:{action}",
                        self.writers.audit(self.ctx.org_id, entity_type, entity_id, action, self.ctx.actor,
                                           self.ctx.trace_id, details))

    def emit(self, event: str, data: dict[str, Any], agent_id: str | None = None,
             connection_id: str | None = None) -> "Tx":
        """An outbox event (delivered over the WebSocket once the commit lands)."""
        return self.add(f"event:{len(self._writes)}:{event}",
                        self.writers.event(self.ctx.org_id, event, data, agent_id=agent_id,
                                           connection_id=connection_id))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._writes]

    @property
    def writes(self) -> list[tuple[str, Write]]:
        return list(self._writes)

    def __len__(self) -> int:
        return len(self._writes)

    # --- committing ---------------------------------------------------------

    def commit(self) -> None:
        """Write everything or nothing. Raises TxFailed(name) or dynamo.TransactionConflict."""
        if self._committed:
            raise RuntimeError("this unit of work was already committed")
        if self.staging is not None:
            if self.bulk:
                raise NotStageable("a bulk write")
            self.staging.take(self._writes)
            self._committed = True
            return
        if not self._writes:
            self._committed = True
            return
        if self.bulk:
            self._commit_bulk()
            self._committed = True
            return
        try:
            if len(self._writes) == 1:
                self._commit_one(*self._writes[0])
            else:
                dynamo.transact([write for _, write in self._writes])
        except dynamo.ConditionFailed as failed:
            name = self._writes[failed.index][0] if failed.index is not None else self._writes[0][0]
            names = [self._writes[i][0] for i in failed.indexes if i < len(self._writes)] or [name]
            raise TxFailed(name, failed.item, names) from None
        self._committed = True

    def commit_returning(self) -> dict[str, Any] | None:
        """Commit a unit of work of one Update and return the item as it is after it (the write
        that is also the read: an agent's lastSeenAt on poll). Raises TxFailed(name, old item)."""
        if self._committed:
            raise RuntimeError("this unit of work was already committed")
        name, write = self._writes[0] if len(self._writes) == 1 else ("", None)
        if not isinstance(write, dynamo.Update) or self.bulk:
            raise ValueError("commit_returning commits exactly one Update")
        if self.staging is not None:
            raise NotStageable("an update whose result is needed")
        try:
            new = dynamo.update(write, return_new=True)
        except dynamo.ConditionFailed as failed:
            raise TxFailed(name, failed.item) from None
        self._committed = True
        return new

    def _commit_bulk(self) -> None:
        by_table: dict[str, list[dict[str, Any]]] = {}
        for _, write in self._writes:
            assert isinstance(write, dynamo.Put)
            by_table.setdefault(write.table, []).append(write.item)
        for table, items in by_table.items():
            dynamo.batch_put(table, items)

    @staticmethod
    def _commit_one(name: str, write: Write) -> None:
        if isinstance(write, dynamo.Put):
            dynamo.put(write)
        elif isinstance(write, dynamo.Update):
            dynamo.update(write, return_new=False)
        elif isinstance(write, dynamo.Delete):
            dynamo.delete(write)
        else:  # a lone ConditionCheck writes nothing: a transaction of one still checks it
            dynamo.transact([write])
