"""Agents in the main table.

  PK ORG#{org}#AGENT#{agentId}, SK AGENT       - the agent: name, pools, status, lastSeenAt, heartbeatMs
     GSI1PK ORG#{org}#AGENTS, GSI1SK agentId   - the org's agents (GET /agents), oldest first
  PK ORG#{org}#AGENT#{agentId}, SK POOL#{pool} - one per pool the agent listed (immutable)
     GSI1PK ORG#{org}#POOL#{pool}, GSI1SK agentId - the agents of a pool (GET /agents?pool=)

The org in every key makes another org's agent indistinguishable from a missing one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from chalicelib.aws import dynamo
from chalicelib.core import clock
from chalicelib.core.config import settings
from chalicelib.agents.models import Agent

ACTIVE: Final = "active"
INACTIVE: Final = "inactive"


def _table() -> str:
    return settings().main_table


def agent_key(org_id: str, agent_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#AGENT#{agent_id}", "SK": "AGENT"}


def to_item(org_id: str, agent: Agent) -> dict[str, Any]:
    """The agent's item: keys, the list index, tags and metadata as JSON text."""
    return {
        **agent_key(org_id, agent.agent_id), "type": "agent", "orgId": org_id, "agentId": agent.agent_id,
        "name": agent.name, "pools": agent.pools, "status": agent.status, "createdAt": agent.created_at,
        "updatedAt": agent.updated_at, "lastSeenAt": agent.last_seen_at, "heartbeatMs": agent.heartbeat_ms,
        # JSON text: arbitrary client JSON (nulls, floats) survives DynamoDB unchanged.
        "tagsJson": json.dumps(agent.tags) if agent.tags is not None else None,
        "metadataJson": json.dumps(agent.metadata) if agent.metadata is not None else None,
        "GSI1PK": f"ORG#{org_id}#AGENTS", "GSI1SK": agent.agent_id,
    }


def from_item(item: dict[str, Any]) -> Agent:
    return Agent(agent_id=item["agentId"], name=item["name"], pools=list(item.get("pools") or []),
                 status=item["status"], tags=json.loads(item["tagsJson"]) if item.get("tagsJson") else None,
                 metadata=json.loads(item["metadataJson"]) if item.get("metadataJson") else None,
                 created_at=item["createdAt"], updated_at=item.get("updatedAt"), last_seen_at=item.get("lastSeenAt"),
                 heartbeat_ms=int(item["heartbeatMs"]) if item.get("heartbeatMs") is not None else None)


@dataclass(frozen=True)
class AgentPage:
    items: list[Agent]
    last_key: dict[str, Any] | None


def _agent(item: dict[str, Any] | None) -> Agent | None:
    return from_item(item) if item else None


def agent_put(org_id: str, agent: Agent) -> dynamo.Put:
    return dynamo.Put(_table(), to_item(org_id, agent), condition="attribute_not_exists(PK)")


def key_put(key_item: dict[str, Any]) -> dynamo.Put:
    """The agent's own API key (core/auth.py mints the item)."""
    return dynamo.Put(_table(), key_item, condition="attribute_not_exists(PK)")


def membership_put(org_id: str, agent_id: str, pool: str) -> dynamo.Put:
    return dynamo.Put(_table(), {
        "PK": f"ORG#{org_id}#AGENT#{agent_id}", "SK": f"POOL#{pool}", "type": "agentPool",
        "orgId": org_id, "agentId": agent_id, "pool": pool,
        "GSI1PK": f"ORG#{org_id}#POOL#{pool}", "GSI1SK": agent_id,
    })


def get(org_id: str, agent_id: str, consistent: bool = False) -> Agent | None:
    return _agent(dynamo.get(_table(), agent_key(org_id, agent_id), consistent=consistent))


def touch_update(org_id: str, agent_id: str, now_iso: str, stale_before_iso: str) -> dynamo.Update:
    """Record that the agent was seen: committed with `commit_returning()`, the write that is also the read.

    The write happens only when the agent is active and lastSeenAt is older
    than `stale_before_iso`; otherwise the condition fails and DynamoDB returns
    the item as it is, unchanged (TxFailed.item), which spares the write to
    the list index on frequent polls.
    """
    return dynamo.Update(
        _table(), agent_key(org_id, agent_id), set={"lastSeenAt": now_iso},
        condition="attribute_exists(PK) AND #st = :active AND "
                  "(attribute_not_exists(lastSeenAt) OR lastSeenAt < :stale)",
        names={"#st": "status"}, values={":active": ACTIVE, ":stale": stale_before_iso})


def agent_of(item: dict[str, Any] | None) -> Agent | None:
    """The agent of an item a write returned (None: no item, an unknown agent)."""
    return _agent(item)


def heartbeat_update(org_id: str, agent_id: str, now_ms: int) -> dynamo.Update:
    """Fails its condition for an unknown or inactive agent."""
    return dynamo.Update(
        _table(), agent_key(org_id, agent_id), set={"heartbeatMs": now_ms, "lastSeenAt": clock.iso(now_ms / 1000)},
        condition="attribute_exists(PK) AND #st = :active", names={"#st": "status"}, values={":active": ACTIVE})


def deactivate_update(org_id: str, agent_id: str, now: str) -> dynamo.Update:
    return dynamo.Update(_table(), agent_key(org_id, agent_id), set={"status": INACTIVE, "updatedAt": now},
                         condition="attribute_exists(PK) AND #st = :active", names={"#st": "status"},
                         values={":active": ACTIVE})


def active_check(org_id: str, agent_id: str) -> dynamo.ConditionCheck:
    return dynamo.ConditionCheck(_table(), agent_key(org_id, agent_id),
                                 condition="attribute_exists(PK) AND #st = :active",
                                 names={"#st": "status"}, values={":active": ACTIVE})


def exists_check(org_id: str, agent_id: str) -> dynamo.ConditionCheck:
    return dynamo.ConditionCheck(_table(), agent_key(org_id, agent_id), condition="attribute_exists(PK)")


def heartbeat_unchanged_check(org_id: str, agent_id: str, heartbeat_ms: int | None) -> dynamo.ConditionCheck:
    if heartbeat_ms is None:
        return dynamo.ConditionCheck(_table(), agent_key(org_id, agent_id),
                                     condition="attribute_not_exists(heartbeatMs)")
    return dynamo.ConditionCheck(_table(), agent_key(org_id, agent_id), condition="heartbeatMs = :hb",
                                 values={":hb": heartbeat_ms})


def list_agents(org_id: str, limit: int, start_key: dict[str, Any] | None) -> AgentPage:
    page = dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#AGENTS"}, index="GSI1",
                        limit=limit, start_key=start_key)
    return AgentPage([from_item(i) for i in page.items], page.last_key)


def list_pool(org_id: str, pool: str, limit: int, start_key: dict[str, Any] | None) -> AgentPage:
    """The agents of a pool: one Query of its memberships, one BatchGetItem of the agents."""
    page = dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#POOL#{pool}"}, index="GSI1",
                        limit=limit, start_key=start_key)
    ids = [i["agentId"] for i in page.items]
    found = dynamo.batch_get(_table(), [agent_key(org_id, a) for a in ids]) if ids else []
    by_id = {item["agentId"]: from_item(item) for item in found}
    return AgentPage([by_id[a] for a in ids if a in by_id], page.last_key)
