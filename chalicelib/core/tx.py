"""A unit of work: named writes, their audit events and outbox events, committed once.

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
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from chalicelib.aws import dynamo

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

    def __init__(self, name: str, item: dict | None = None):
        super().__init__(f"condition of {name!r} failed")
        self.name = name
        self.item = item


class Tx:
    def __init__(self, ctx: "Ctx"):
        self.ctx = ctx
        self._writes: list[tuple[str, Write]] = []
        self._committed = False

    # --- what the unit of work holds ----------------------------------------

    def add(self, name: str, write: Write) -> "Tx":
        if any(existing == name for existing, _ in self._writes):
            raise ValueError(f"a write called {name!r} is already in this unit of work")
        if len(self._writes) >= MAX_ITEMS:
            raise ValueError(f"a unit of work holds at most {MAX_ITEMS} writes")
        self._writes.append((name, write))
        return self

    put = update = delete = check = add  # read as what the write is; all named the same way

    def audit(self, entity_type: str, entity_id: str, action: str, details: dict[str, Any] | None = None,
              name: str | None = None) -> "Tx":
        """The audit event of this change, attributed to the context's actor and trace."""
        from chalicelib.core import audit

        return self.add(name or f"audit:{entity_type}:{entity_id}:{action}",
                        audit.audit_put(self.ctx.org_id, entity_type, entity_id, action, self.ctx.actor,
                                        self.ctx.trace_id, details))

    def emit(self, event: str, data: dict[str, Any], agent_id: str | None = None,
             connection_id: str | None = None) -> "Tx":
        """An outbox event (delivered over the WebSocket once the commit lands)."""
        from chalicelib.events import outbox

        return self.add(f"event:{len(self._writes)}:{event}",
                        outbox.event_put(self.ctx.org_id, event, data, agent_id=agent_id,
                                         connection_id=connection_id))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._writes]

    def __len__(self) -> int:
        return len(self._writes)

    # --- committing ---------------------------------------------------------

    def commit(self) -> None:
        """Write everything or nothing. Raises TxFailed(name) or dynamo.TransactionConflict."""
        if self._committed:
            raise RuntimeError("this unit of work was already committed")
        if not self._writes:
            self._committed = True
            return
        try:
            if len(self._writes) == 1:
                self._commit_one(*self._writes[0])
            else:
                dynamo.transact([write for _, write in self._writes])
        except dynamo.ConditionFailed as failed:
            name = self._writes[failed.index][0] if failed.index is not None else self._writes[0][0]
            raise TxFailed(name, failed.item) from None
        self._committed = True

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
