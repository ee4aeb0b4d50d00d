"""Instances: game-server instances, each owned by one agent.

  PK ORG#{org}#INST#{instanceId}, SK INST                         - the instance
  GSI1PK ORG#{org}#INSTANCES, GSI1SK {instanceId}                 - the org's instances, oldest first
  GSI2PK ORG#{org}#AGENT#{agentId}#INSTANCES, GSI2SK {instanceId} - one agent's instances

The org is in every key: another org's instance is simply not found.
metadata is stored as JSON text (never queried; keeps nulls, floats and empty
strings exactly as sent).
"""
from __future__ import annotations

import json

from chalicelib.aws import dynamo
from chalicelib.core import clock
from chalicelib.core.config import settings


def _table() -> str:
    return settings().main_table


def key(org_id: str, instance_id: str) -> dict:
    return {"PK": f"ORG#{org_id}#INST#{instance_id}", "SK": "INST"}


def new_item(org_id: str, instance_id: str, agent_id: str, name: str, game_type: str | None,
             metadata: dict | None) -> dict:
    return {
        **key(org_id, instance_id), "type": "instance", "orgId": org_id, "instanceId": instance_id,
        "agentId": agent_id, "name": name, "gameType": game_type,
        "metadata": json.dumps(metadata, separators=(",", ":")) if metadata is not None else None,
        "createdAt": clock.iso(),
        "GSI1PK": f"ORG#{org_id}#INSTANCES", "GSI1SK": instance_id,
        "GSI2PK": f"ORG#{org_id}#AGENT#{agent_id}#INSTANCES", "GSI2SK": instance_id,
    }


def put(item: dict) -> dynamo.Put:
    return dynamo.Put(_table(), item, condition="attribute_not_exists(PK)")


def get(org_id: str, instance_id: str) -> dict | None:
    # Strongly consistent: an agent pushes logs right after its instance is created.
    return dynamo.get(_table(), key(org_id, instance_id), consistent=True)


def list_page(org_id: str, agent_id: str | None, limit: int, start_key: dict | None) -> dynamo.Page:
    if agent_id is None:
        return dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#INSTANCES"}, index="GSI1",
                            limit=limit, start_key=start_key)
    return dynamo.query(_table(), "GSI2PK = :pk", {":pk": f"ORG#{org_id}#AGENT#{agent_id}#INSTANCES"},
                        index="GSI2", limit=limit, start_key=start_key)


def public(item: dict) -> dict:
    out = {k: item.get(k) for k in ("instanceId", "agentId", "name", "gameType", "createdAt")}
    if item.get("metadata") is not None:
        out["metadata"] = json.loads(item["metadata"])
    return out
