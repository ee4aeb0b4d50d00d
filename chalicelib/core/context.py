"""The context every service receives: who is acting, under which trace, at what time.

Services are `fn(ctx, command)` (reads, single writes) or build a `Tx` from
the context (`ctx.tx()`) for writes that must commit together. Routes, SQS
consumers and schedules each build a Ctx and call the same services; a
service never sees the HTTP request.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from chalicelib.core import clock, ids
from chalicelib.core.config import Settings, settings

from chalicelib.core.auth import Principal, Scope

if TYPE_CHECKING:
    from chalicelib.core.tx import Tx


@dataclass(frozen=True)
class Ctx:
    principal: Principal | None
    trace_id: str = field(default_factory=ids.new_id)
    # The org a system actor (a schedule, a queue consumer) acts for; a
    # principal's own org otherwise.
    system_org_id: str | None = None
    # What `tx()` builds: the real unit of work unless a test hands in a fake
    # (tests/unit/fakes.py) that records the named writes instead of sending them.
    unit_of_work: "Callable[[Ctx], Tx] | None" = field(default=None, compare=False, repr=False)

    @classmethod
    def system(cls, org_id: str | None = None, trace_id: str | None = None) -> "Ctx":
        """A context for schedules and queue consumers: actor `system`."""
        return cls(principal=None, trace_id=trace_id or ids.new_id(), system_org_id=org_id)

    @property
    def org_id(self) -> str:
        if self.principal is not None:
            return self.principal.org_id
        assert self.system_org_id is not None, "a system context acts for one org at a time"
        return self.system_org_id

    def for_org(self, org_id: str) -> "Ctx":
        """The same system context, acting for `org_id` (a sweep over many orgs)."""
        return Ctx(principal=self.principal, trace_id=self.trace_id, system_org_id=org_id,
                   unit_of_work=self.unit_of_work)

    @property
    def actor(self) -> str:
        """Who did it, as audit events record it."""
        return self.principal.actor if self.principal is not None else "system"

    # --- the agent-ownership rule, the one place it is applied ---------------

    def require_agent(self, agent_id: str) -> None:
        """An agent key may only act as (or on what belongs to) its own agent: 403 otherwise.
        Operators, admins and the system act for every agent of the org."""
        if self.principal is not None:
            self.principal.require_agent(agent_id)

    def agent_filter(self, agent_id: str | None) -> str | None:
        """The agent a list is limited to: an agent key sees its own agent's only (asking for another: 403)."""
        principal = self.principal
        if principal is not None and principal.scope is Scope.AGENT:
            self.require_agent(agent_id or principal.agent_id or "")
            return principal.agent_id
        return agent_id

    @property
    def settings(self) -> Settings:
        return settings()

    def now(self) -> float:
        return clock.now()

    def iso(self, epoch: float | None = None) -> str:
        return clock.iso(epoch)

    def tx(self) -> "Tx":
        """The unit of work of this context (staged when the pipeline stages an idempotent POST)."""
        if self.unit_of_work is not None:
            return self.unit_of_work(self)
        from chalicelib.core.tx import Tx

        return Tx(self)

    def bulk(self) -> "Tx":
        """A bulk unit of work: unconditional puts, BatchWriteItem, no atomicity (logs, patch events)."""
        tx = self.tx()
        tx.bulk = True
        return tx
