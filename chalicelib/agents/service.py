"""Agents: registration (with a bound agent key), listing, heartbeat, deactivation.

Also the small surface other domains use (they never touch this store, nor
hold its writes): `for_poll`, `require_active`, `require_exists`, `is_active`,
`heartbeat_of`, `require_heartbeat_unchanged`. A `require_*` adds its own
named check to the caller's unit of work; the caller handles `TxFailed` by
that name.
"""
from __future__ import annotations

from collections.abc import Iterator

from chalicelib.agents import models, store
from chalicelib.agents.models import Agent, AgentCreated, AgentList
from chalicelib.agents.store import ACTIVE, INACTIVE
from chalicelib.core import ids
from chalicelib.fanout import fanout
from chalicelib.core.auth import Scope, new_key
from chalicelib.core.context import Ctx
from chalicelib.core.errors import Forbidden, NotFound, Unavailable
from chalicelib.core.lookup import found
from chalicelib.core.paging import next_token, start_key
from chalicelib.core.tx import TransactionConflict, Tx, TxFailed, retry_conflicts

__all__ = ["ACTIVE", "INACTIVE", "register", "get", "list_agents", "heartbeat", "deactivate", "for_poll",
           "require_active", "require_exists", "is_active", "heartbeat_of", "require_heartbeat_unchanged",
           "find", "members_of_pool"]
# lastSeenAt is written at most this often by polls (see store.touch_update).
LAST_SEEN_RESOLUTION_SECONDS = 5


def register(ctx: Ctx, command: models.RegisterAgentRequest) -> AgentCreated:
    c = command
    now = ctx.iso()
    agent = Agent(agent_id=ids.new_id(), name=c.name, pools=c.pools, status=ACTIVE,
                  tags=c.tags, metadata=c.metadata, created_at=now, updated_at=now)
    api_key, key_item = new_key(ctx.org_id, Scope.AGENT, f"agent {c.name}", agent_id=agent.agent_id)
    tx = ctx.tx()
    tx.put("agent", store.agent_put(ctx.org_id, agent))
    tx.put("key", store.key_put(key_item))
    for pool in c.pools:
        tx.put(f"pool:{pool}", store.membership_put(ctx.org_id, agent.agent_id, pool))
    tx.audit("agent", agent.agent_id, "registered", {"name": c.name, "pools": c.pools, "keyId": key_item["keyId"]})
    tx.commit()
    return AgentCreated(**dict(agent), api_key=api_key)


def get(ctx: Ctx, agent_id: str) -> Agent:
    ctx.require_agent(agent_id)
    return found(store.get(ctx.org_id, agent_id), "agent", agent_id)


def list_agents(ctx: Ctx, query: models.AgentListQuery) -> AgentList:
    scope = f"agents:{ctx.org_id}:{query.pool or ''}"
    start = start_key(query.next_token, scope)
    if query.pool is None:
        agents = store.list_agents(ctx.org_id, query.limit, start)
    else:
        agents = store.list_pool(ctx.org_id, query.pool, query.limit, start)
    return AgentList(items=agents.items, next_token=next_token(agents.last_key, scope))


def heartbeat(ctx: Ctx, agent_id: str) -> None:
    ctx.require_agent(agent_id)
    tx = ctx.tx()
    tx.update("agent", store.heartbeat_update(ctx.org_id, agent_id, int(ctx.now() * 1000)))
    try:
        # The agent item is also in its jobs' progress transactions (ConditionCheck): conflicts retry.
        retry_conflicts(tx.commit)
    except TxFailed:
        raise Forbidden(f"agent {agent_id} is unknown or inactive") from None
    except TransactionConflict:
        raise Unavailable("the agent is busy; retry", headers={"Retry-After": "1"}) from None


def deactivate(ctx: Ctx, agent_id: str) -> Agent:
    agent = found(store.get(ctx.org_id, agent_id, consistent=True), "agent", agent_id)
    if agent.status == INACTIVE:
        return agent  # deactivating twice is a no-op
    now = ctx.iso()
    tx = ctx.tx()
    tx.update("agent", store.deactivate_update(ctx.org_id, agent_id, now))
    tx.audit("agent", agent_id, "deactivated")
    try:
        tx.commit()
    except TxFailed:
        pass  # deactivated concurrently: the outcome is the same
    # An inactive agent keeps no socket open: its events stop at once.
    fanout.close_opened_with(ctx.org_id, agent_id=agent_id)
    return agent.model_copy(update={"status": INACTIVE, "updated_at": now})


# --- for the jobs and instances domains ---------------------------------------------

def for_poll(ctx: Ctx, agent_id: str) -> Agent:
    """The active agent (its pools), recording lastSeenAt on the way. Forbidden when unknown or inactive."""
    now = ctx.now()
    tx = ctx.tx()
    tx.update("agent", store.touch_update(ctx.org_id, agent_id, ctx.iso(now),
                                          ctx.iso(now - LAST_SEEN_RESOLUTION_SECONDS)))
    try:
        agent = store.agent_of(tx.commit_returning())
    except TxFailed as failed:  # seen lately, inactive or unknown: the item as it is (None: unknown)
        agent = store.agent_of(failed.item)
    if agent is None or not agent.active:
        raise Forbidden(f"agent {agent_id} is unknown or inactive")
    return agent


def require_known(ctx: Ctx, agent_id: str) -> None:
    """For reads of what belongs to an agent: 403 for an agent key naming another agent (before any
    look-up, so it tells nothing about any organization), then 404 unless the caller's organization has
    this agent, active or not (another organization's agent is indistinguishable from none)."""
    ctx.require_agent(agent_id)
    principal = ctx.principal
    if principal is not None and principal.agent_id == agent_id:
        return  # an agent key is bound to its agent: no read needed
    if store.get(ctx.org_id, agent_id, consistent=True) is None:
        raise NotFound(f"no agent {agent_id}")


def require_active(tx: Tx, org_id: str, agent_id: str, name: str = "agent") -> None:
    """The caller's unit of work fails (TxFailed(name)) unless the agent exists and is active at commit."""
    tx.check(name, store.active_check(org_id, agent_id))


def require_exists(tx: Tx, org_id: str, agent_id: str, name: str = "agent") -> None:
    """The caller's unit of work fails (TxFailed(name)) unless the organization has this agent (active or not)."""
    tx.check(name, store.exists_check(org_id, agent_id))


def is_active(org_id: str, agent_id: str) -> bool | None:
    """True/False for a known agent, None for an unknown one (error paths only)."""
    agent = store.get(org_id, agent_id, consistent=True)
    return None if agent is None else agent.active


def heartbeat_of(org_id: str, agent_id: str) -> int | None:
    """The agent's last heartbeat (epoch ms), None if it never sent one or is gone."""
    agent = store.get(org_id, agent_id, consistent=True)
    return agent.heartbeat_ms if agent else None


def require_heartbeat_unchanged(tx: Tx, org_id: str, agent_id: str, heartbeat_ms: int | None,
                                name: str = "heartbeat") -> None:
    """The caller's unit of work fails (TxFailed(name)) if the agent sent a heartbeat since `heartbeat_ms` was read."""
    tx.check(name, store.heartbeat_unchanged_check(org_id, agent_id, heartbeat_ms))


# --- for the fleetconfig domain ---------------------------------------------------------

def find(org_id: str, agent_id: str) -> Agent | None:
    """The agent (active or not), None when the organization has none of that id."""
    return store.get(org_id, agent_id, consistent=True)


def members_of_pool(org_id: str, pool: str, page_size: int = 100) -> Iterator[Agent]:
    """Every agent that listed `pool` at registration (pools are immutable), page by page."""
    start = None
    while True:
        page = store.list_pool(org_id, pool, page_size, start)
        yield from page.items
        if page.last_key is None:
            return
        start = page.last_key
