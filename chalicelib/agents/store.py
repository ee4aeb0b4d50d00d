"""Agents in the main table.

  PK ORG#{org}#AGENT#{agentId}, SK AGENT       - the agent: name, pools, status, lastSeenAt, heartbeatMs
     GSI1PK ORG#{org}#AGENTS, GSI1SK agentId   - the org's agents (GET /agents), oldest first
  PK ORG#{org}#AGENT#{agentId}, SK POOL#{pool} - one per pool the agent listed (immutable)
     GSI1PK ORG#{org}#POOL#{pool}, GSI1SK agentId - the agents of a pool (GET /agents?pool=)

The org in every key makes another org's agent indistinguishable from a missing one.
"""
from __future__ import annotations

import json

from chalicelib.aws import dynamo
from chalicelib.core import clock
from chalicelib.core.config import settings

ACTIVE, INACTIVE = "active", "inactive"


def _table() -> str:
    return settings().main_table


def agent_key(org_id: str, agent_id: str) -> dict:
    return {"PK": f"ORG#{org_id}#AGENT#{agent_id}", "SK": "AGENT"}


def agent_put(org_id: str, agent_id: str, name: str, pools: list[str], tags, metadata, now: str) -> dynamo.Put:
    item = {
        **agent_key(org_id, agent_id), "type": "agent", "orgId": org_id, "agentId": agent_id, "name": name,
        "pools": pools, "status": ACTIVE, "createdAt": now, "updatedAt": now,
        # JSON text: arbitrary client JSON (nulls, floats) survives DynamoDB unchanged.
        "tagsJson": json.dumps(tags) if tags is not None else None,
        "metadataJson": json.dumps(metadata) if metadata is not None else None,
        "GSI1PK": f"ORG#{org_id}#AGENTS", "GSI1SK": agent_id,
    }
    return dynamo.Put(_table(), item, condition="attribute_not_exists(PK)")


def membership_put(org_id: str, agent_id: str, pool: str) -> dynamo.Put:
    return dynamo.Put(_table(), {
        "PK": f"ORG#{org_id}#AGENT#{agent_id}", "SK": f"POOL#{pool}", "type": "agentPool",
        "orgId": org_id, "agentId": agent_id, "pool": pool,
        "GSI1PK": f"ORG#{org_id}#POOL#{pool}", "GSI1SK": agent_id,
    })


def get(org_id: str, agent_id: str, consistent: bool = False) -> dict | None:
    return dynamo.get(_table(), agent_key(org_id, agent_id), consistent=consistent)


def touch(org_id: str, agent_id: str, now_iso: str, stale_before_iso: str) -> dict | None:
    """Record that the agent was seen, and return it (None: unknown agent).

    One UpdateItem that is also the read: the write happens only when the agent
    is active and lastSeenAt is older than `stale_before_iso`; otherwise the
    condition fails and DynamoDB returns the item as it is, unchanged, which
    spares the write to the list index on frequent polls.
    """
    try:
        return dynamo.update(dynamo.Update(
            _table(), agent_key(org_id, agent_id), set={"lastSeenAt": now_iso},
            condition="attribute_exists(PK) AND #st = :active AND "
                      "(attribute_not_exists(lastSeenAt) OR lastSeenAt < :stale)",
            names={"#st": "status"}, values={":active": ACTIVE, ":stale": stale_before_iso}))
    except dynamo.ConditionFailed as failed:
        return failed.item


def heartbeat(org_id: str, agent_id: str, now_ms: int) -> None:
    """Raises ConditionFailed for an unknown or inactive agent."""
    dynamo.update(dynamo.Update(
        _table(), agent_key(org_id, agent_id), set={"heartbeatMs": now_ms, "lastSeenAt": clock.iso(now_ms / 1000)},
        condition="attribute_exists(PK) AND #st = :active", names={"#st": "status"}, values={":active": ACTIVE}),
        return_new=False)


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


def list_agents(org_id: str, limit: int, start_key: dict | None) -> dynamo.Page:
    return dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#AGENTS"}, index="GSI1",
                        limit=limit, start_key=start_key)


def list_pool(org_id: str, pool: str, limit: int, start_key: dict | None) -> dynamo.Page:
    return dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#POOL#{pool}"}, index="GSI1",
                        limit=limit, start_key=start_key)


def get_many(org_id: str, agent_ids: list[str]) -> dict[str, dict]:
    found = dynamo.batch_get(_table(), [agent_key(org_id, a) for a in agent_ids]) if agent_ids else []
    return {item["agentId"]: item for item in found}
