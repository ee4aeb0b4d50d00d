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
from dataclasses import dataclass
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.config import settings
from chalicelib.instances.models import Instance


def _table() -> str:
    return settings().main_table


def key(org_id: str, instance_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#INST#{instance_id}", "SK": "INST"}


def to_item(org_id: str, instance: Instance) -> dict[str, Any]:
    """The instance's item: keys, both list indexes, metadata as JSON text."""
    instance_id = instance.instance_id
    return {
        **key(org_id, instance_id), "type": "instance", "orgId": org_id, "instanceId": instance_id,
        "agentId": instance.agent_id, "name": instance.name, "gameType": instance.game_type,
        "metadata": json.dumps(instance.metadata, separators=(",", ":")) if instance.metadata is not None else None,
        "createdAt": instance.created_at,
        "GSI1PK": f"ORG#{org_id}#INSTANCES", "GSI1SK": instance_id,
        "GSI2PK": f"ORG#{org_id}#AGENT#{instance.agent_id}#INSTANCES", "GSI2SK": instance_id,
    }


def from_item(item: dict[str, Any]) -> Instance:
    return Instance(instance_id=item["instanceId"], agent_id=item["agentId"], name=item["name"],
                    game_type=item.get("gameType"),
                    metadata=json.loads(item["metadata"]) if item.get("metadata") is not None else None,
                    created_at=item["createdAt"])


@dataclass(frozen=True)
class InstancePage:
    items: list[Instance]
    last_key: dict[str, Any] | None


def put(org_id: str, instance: Instance) -> dynamo.Put:
    return dynamo.Put(_table(), to_item(org_id, instance), condition="attribute_not_exists(PK)")


def get(org_id: str, instance_id: str) -> Instance | None:
    # Strongly consistent: an agent pushes logs right after its instance is created.
    item = dynamo.get(_table(), key(org_id, instance_id), consistent=True)
    return from_item(item) if item else None


def list_page(org_id: str, agent_id: str | None, limit: int, start_key: dict[str, Any] | None) -> InstancePage:
    if agent_id is None:
        page = dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#INSTANCES"}, index="GSI1",
                            limit=limit, start_key=start_key)
    else:
        page = dynamo.query(_table(), "GSI2PK = :pk", {":pk": f"ORG#{org_id}#AGENT#{agent_id}#INSTANCES"},
                            index="GSI2", limit=limit, start_key=start_key)
    return InstancePage([from_item(i) for i in page.items], page.last_key)
