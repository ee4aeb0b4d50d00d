"""Fleet configuration in the main table.

  PK ORG#{org}#CONFIG#POOL#{pool}  SK CONFIG           - a pool's document: version, documentJson, updatedAt
     GSI1PK ORG#{org}#CONFIGS, GSI1SK POOL#{pool}      - the org's documents (the drift scan)
  PK ORG#{org}#AGENT#{agentId}     SK CONFIG#DESIRED   - the agent's own document (same attributes)
     GSI1PK ORG#{org}#CONFIGS, GSI1SK AGENT#{agentId}
  PK ORG#{org}#AGENT#{agentId}     SK CONFIG#REPORTED  - what its gateway reported; the last applied document

A document write is a Put conditioned on the version it replaces (attribute_not_exists for the
first): two writers that read the same version cannot both win. A report is a Put conditioned on
not going back (a delayed report of an older version loses to a newer one).
Documents are stored as JSON text: their explicit nulls (which remove, fleet_config/merge.py)
survive DynamoDB unchanged.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.config import settings
from chalicelib.fleetconfig.rules import AGENT, POOL, Layer, Reported

DESIRED_SK, REPORTED_SK = "CONFIG#DESIRED", "CONFIG#REPORTED"


def _table() -> str:
    return settings().main_table


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def pool_key(org_id: str, pool: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#CONFIG#POOL#{pool}", "SK": "CONFIG"}


def agent_key(org_id: str, agent_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#AGENT#{agent_id}", "SK": DESIRED_SK}


def reported_key(org_id: str, agent_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#AGENT#{agent_id}", "SK": REPORTED_SK}


def _layer_key(org_id: str, layer: Layer) -> dict[str, Any]:
    return pool_key(org_id, layer.name) if layer.scope == POOL else agent_key(org_id, layer.name)


def layer_put(org_id: str, layer: Layer, expected_version: int) -> dynamo.Put:
    """The layer at its new version, only if the stored one is `expected_version` (0: none yet)."""
    item = {**_layer_key(org_id, layer), "type": f"config{layer.scope.capitalize()}", "orgId": org_id,
            "scope": layer.scope, "name": layer.name, "version": layer.version,
            "documentJson": _json(layer.document), "updatedAt": layer.updated_at,
            "GSI1PK": f"ORG#{org_id}#CONFIGS", "GSI1SK": f"{layer.scope.upper()}#{layer.name}"}
    if expected_version == 0:
        return dynamo.Put(_table(), item, condition="attribute_not_exists(PK)", return_old_on_failure=True)
    return dynamo.Put(_table(), item, condition="#v = :expected", names={"#v": "version"},
                      values={":expected": expected_version}, return_old_on_failure=True)


def layer_of(item: dict[str, Any] | None) -> Layer | None:
    if not item:
        return None
    return Layer(scope=item["scope"], name=item["name"], version=int(item["version"]),
                 document=json.loads(item["documentJson"]), updated_at=item["updatedAt"])


def get_pool(org_id: str, pool: str) -> Layer | None:
    return layer_of(dynamo.get(_table(), pool_key(org_id, pool), consistent=True))


def get_agent(org_id: str, agent_id: str) -> Layer | None:
    return layer_of(dynamo.get(_table(), agent_key(org_id, agent_id), consistent=True))


def read_agent_state(org_id: str, agent_id: str,
                     pools: list[str]) -> tuple[dict[str, Layer], Layer | None, Reported | None]:
    """One consistent BatchGetItem: the agent's pools' documents, its own, and what it reported."""
    keys = [pool_key(org_id, p) for p in pools] + [agent_key(org_id, agent_id), reported_key(org_id, agent_id)]
    pool_layers: dict[str, Layer] = {}
    agent_layer, reported = None, None
    for item in dynamo.batch_get(_table(), keys, consistent=True):
        if item["SK"] == REPORTED_SK:
            reported = reported_of(item)
        elif item["SK"] == DESIRED_SK:
            agent_layer = layer_of(item)
        else:
            layer = layer_of(item)
            if layer is not None:
                pool_layers[layer.name] = layer
    return pool_layers, agent_layer, reported


def read_many(org_id: str, pools: set[str], agent_ids: set[str]) -> tuple[dict[str, Layer], dict[str, Layer],
                                                                         dict[str, Reported]]:
    """Many agents' inputs at once (the drift scan, a pool write's events): pool layers, agent layers
    and reports by name, in BatchGetItems of 100 keys."""
    keys = [pool_key(org_id, p) for p in sorted(pools)]
    for agent_id in sorted(agent_ids):
        keys += [agent_key(org_id, agent_id), reported_key(org_id, agent_id)]
    pool_layers: dict[str, Layer] = {}
    agent_layers: dict[str, Layer] = {}
    reports: dict[str, Reported] = {}
    for item in dynamo.batch_get(_table(), keys, consistent=True) if keys else []:
        if item["SK"] == REPORTED_SK:
            reports[item["agentId"]] = reported_of(item)
        else:
            layer = layer_of(item)
            if layer is not None:
                (pool_layers if layer.scope == POOL else agent_layers)[layer.name] = layer
    return pool_layers, agent_layers, reports


def reported_put(org_id: str, agent_id: str, reported: Reported) -> dynamo.Put:
    """The report, unless a newer version was reported already (a report never goes back)."""
    item: dict[str, Any] = {
        **reported_key(org_id, agent_id), "type": "configReported", "orgId": org_id, "agentId": agent_id,
        "version": reported.version, "status": reported.status, "at": reported.at, "error": reported.error,
        "appliedVersion": reported.applied_version,
        "appliedJson": _json(reported.applied_document) if reported.applied_document is not None else None,
    }
    return dynamo.Put(_table(), item, condition="attribute_not_exists(PK) OR #v <= :v", names={"#v": "version"},
                      values={":v": reported.version})


def reported_of(item: dict[str, Any]) -> Reported:
    applied = item.get("appliedJson")
    return Reported(version=int(item["version"]), status=item["status"], at=item["at"], error=item.get("error"),
                    applied_version=int(item["appliedVersion"]) if item.get("appliedVersion") is not None else None,
                    applied_document=json.loads(applied) if applied else None)


def configured(org_id: str) -> tuple[list[str], list[str]]:
    """The pools and the agents of an org that have a document of their own (the drift scan's start)."""
    pools: list[str] = []
    agents: list[str] = []
    for item in dynamo.query_all(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#CONFIGS"}, index="GSI1",
                                 projection="GSI1SK"):
        kind, _, name = str(item["GSI1SK"]).partition("#")
        (pools if kind == POOL.upper() else agents if kind == AGENT.upper() else []).append(name)
    return pools, agents
