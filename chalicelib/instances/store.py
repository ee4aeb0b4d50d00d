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


def _table() -> str:
    return settings().main_table


def key(org_id: str, instance_id: str) -> dict:
    return {"PK": f"ORG#{org_id}#INST#{instance_id}", "SK": "INST"}


@dataclass(frozen=True)
class Instance:
    """The instance item; `to_item`/`from_item` are its one mapping to and from DynamoDB."""

    org_id: str
    instance_id: str
    agent_id: str
    name: str
    game_type: str | None
    metadata: dict[str, Any] | None
    created_at: str

    def to_item(self) -> dict:
        org_id, instance_id = self.org_id, self.instance_id
        return {
            **key(org_id, instance_id), "type": "instance", "orgId": org_id, "instanceId": instance_id,
            "agentId": self.agent_id, "name": self.name, "gameType": self.game_type,
            "metadata": json.dumps(self.metadata, separators=(",", ":")) if self.metadata is not None else None,
            "createdAt": self.created_at,
            "GSI1PK": f"ORG#{org_id}#INSTANCES", "GSI1SK": instance_id,
            "GSI2PK": f"ORG#{org_id}#AGENT#{self.agent_id}#INSTANCES", "GSI2SK": instance_id,
        }

    @classmethod
    def from_item(cls, item: dict) -> "Instance":
        return cls(org_id=item["orgId"], instance_id=item["instanceId"], agent_id=item["agentId"],
                   name=item["name"], game_type=item.get("gameType"),
                   metadata=json.loads(item["metadata"]) if item.get("metadata") is not None else None,
                   created_at=item["createdAt"])


@dataclass(frozen=True)
class InstancePage:
    items: list[Instance]
    last_key: dict | None


def put(instance: Instance) -> dynamo.Put:
    return dynamo.Put(_table(), instance.to_item(), condition="attribute_not_exists(PK)")


def get(org_id: str, instance_id: str) -> Instance | None:
    # Strongly consistent: an agent pushes logs right after its instance is created.
    item = dynamo.get(_table(), key(org_id, instance_id), consistent=True)
    return Instance.from_item(item) if item else None


def list_page(org_id: str, agent_id: str | None, limit: int, start_key: dict | None) -> InstancePage:
    if agent_id is None:
        page = dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#INSTANCES"}, index="GSI1",
                            limit=limit, start_key=start_key)
    else:
        page = dynamo.query(_table(), "GSI2PK = :pk", {":pk": f"ORG#{org_id}#AGENT#{agent_id}#INSTANCES"},
                            index="GSI2", limit=limit, start_key=start_key)
    return InstancePage([Instance.from_item(i) for i in page.items], page.last_key)
