"""Agents: registration (with a bound agent key), listing, heartbeat, deactivation.

Also the small surface the jobs domain uses (it never touches this store):
`for_poll`, `active_check`, `heartbeat_of`, `heartbeat_unchanged_check`.
"""
from __future__ import annotations

import json

from chalicelib.agents import store
from chalicelib.aws import dynamo
from chalicelib.fanout import fanout
from chalicelib.core import audit, clock, ids
from chalicelib.core.auth import Principal, Scope, new_key
from chalicelib.core.errors import Forbidden, NotFound, Unavailable

ACTIVE, INACTIVE = store.ACTIVE, store.INACTIVE
# lastSeenAt is written at most this often by polls (see store.touch).
LAST_SEEN_RESOLUTION_SECONDS = 5


def view(item: dict) -> dict:
    out = {k: item.get(k) for k in ("agentId", "name", "pools", "status", "createdAt", "updatedAt")}
    out["pools"] = list(item.get("pools") or [])
    if item.get("tagsJson"):
        out["tags"] = json.loads(item["tagsJson"])
    if item.get("metadataJson"):
        out["metadata"] = json.loads(item["metadataJson"])
    out["lastSeenAt"] = item.get("lastSeenAt")
    return out


def register(principal: Principal, name: str, pools: list[str], tags, metadata, trace_id: str | None) -> dict:
    org_id = principal.org_id
    agent_id = ids.new_id()
    now = clock.iso()
    api_key, key_item = new_key(org_id, Scope.AGENT, f"agent {name}", agent_id=agent_id)
    put = store.agent_put(org_id, agent_id, name, pools, tags, metadata, now)
    dynamo.transact([
        put,
        dynamo.Put(put.table, key_item, condition="attribute_not_exists(PK)"),
        *(store.membership_put(org_id, agent_id, pool) for pool in pools),
        audit.audit_put(org_id, "agent", agent_id, "registered", principal.actor, trace_id,
                        {"name": name, "pools": pools, "keyId": key_item["keyId"]}),
    ])
    return {**view(put.item), "apiKey": api_key}


def get(org_id: str, agent_id: str) -> dict:
    item = store.get(org_id, agent_id)
    if not item:
        raise NotFound(f"no agent {agent_id}")
    return view(item)


def list_page(org_id: str, pool: str | None, limit: int, start_key: dict | None) -> tuple[list[dict], dict | None]:
    if pool is None:
        page = store.list_agents(org_id, limit, start_key)
        return [view(i) for i in page.items], page.last_key
    page = store.list_pool(org_id, pool, limit, start_key)
    found = store.get_many(org_id, [i["agentId"] for i in page.items])
    return [view(found[i["agentId"]]) for i in page.items if i["agentId"] in found], page.last_key


def heartbeat(org_id: str, agent_id: str) -> None:
    try:
        # The agent item is also in its jobs' progress transactions (ConditionCheck): conflicts retry.
        dynamo.retry_conflicts(lambda: store.heartbeat(org_id, agent_id, int(clock.now() * 1000)))
    except dynamo.ConditionFailed:
        raise Forbidden(f"agent {agent_id} is unknown or inactive") from None
    except dynamo.TransactionConflict:
        raise Unavailable("the agent is busy; retry", headers={"Retry-After": "1"}) from None


def deactivate(principal: Principal, agent_id: str, trace_id: str | None) -> dict:
    org_id = principal.org_id
    item = store.get(org_id, agent_id, consistent=True)
    if not item:
        raise NotFound(f"no agent {agent_id}")
    if item.get("status") == INACTIVE:
        return view(item)  # deactivating twice is a no-op
    now = clock.iso()
    try:
        dynamo.transact([
            store.deactivate_update(org_id, agent_id, now),
            audit.audit_put(org_id, "agent", agent_id, "deactivated", principal.actor, trace_id),
        ])
    except dynamo.ConditionFailed:
        pass  # deactivated concurrently: the outcome is the same
    # An inactive agent keeps no socket open: its events stop at once.
    fanout.close_opened_with(org_id, agent_id=agent_id)
    return view({**item, "status": INACTIVE, "updatedAt": now})


# --- for the jobs domain -------------------------------------------------------

def for_poll(org_id: str, agent_id: str) -> dict:
    """The active agent (its pools), recording lastSeenAt on the way. Forbidden when unknown or inactive."""
    now = clock.now()
    item = store.touch(org_id, agent_id, clock.iso(now), clock.iso(now - LAST_SEEN_RESOLUTION_SECONDS))
    if not item or item.get("status") != ACTIVE:
        raise Forbidden(f"agent {agent_id} is unknown or inactive")
    return item


def active_check(org_id: str, agent_id: str) -> dynamo.ConditionCheck:
    """A transaction item that fails unless the agent exists and is active."""
    return store.active_check(org_id, agent_id)


def exists_check(org_id: str, agent_id: str) -> dynamo.ConditionCheck:
    """A transaction item that fails unless the organization has this agent (active or not)."""
    return store.exists_check(org_id, agent_id)


def is_active(org_id: str, agent_id: str) -> bool | None:
    """True/False for a known agent, None for an unknown one (error paths only)."""
    item = store.get(org_id, agent_id, consistent=True)
    return None if item is None else item.get("status") == ACTIVE


def heartbeat_of(org_id: str, agent_id: str) -> int | None:
    """The agent's last heartbeat (epoch ms), None if it never sent one or is gone."""
    item = store.get(org_id, agent_id, consistent=True)
    return item.get("heartbeatMs") if item else None


def heartbeat_unchanged_check(org_id: str, agent_id: str, heartbeat_ms: int | None) -> dynamo.ConditionCheck:
    """A transaction item that fails if the agent sent a heartbeat since `heartbeat_ms` was read."""
    return store.heartbeat_unchanged_check(org_id, agent_id, heartbeat_ms)
