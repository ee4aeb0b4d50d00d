"""Fleet configuration: pool and agent documents (optimistic locking), the merged view, reports, drift.

Write: one unit of work holds the document's conditional Put (the version it replaces), its audit
event and `config:changed {agentId, version}` for every agent the document reaches (the agent
itself; every member of a pool). The events are hints: a gateway fetches the document over HTTPS
on the event, on every (re)connect and on a slow poll, so a lost event costs a poll interval.
A pool of more than EVENTS_IN_TRANSACTION agents gets the rest of its events in a bulk write right
after the commit (a crash in between loses hints, never the document).

Read: one consistent BatchGetItem fetches the agent's pools' documents, its own and its report;
the merged document, its version (the sum of the layers' versions, rules.py) and the delta are
computed from them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chalicelib.agents import service as agents
from chalicelib.agents.models import POOL_PATTERN, Agent
from chalicelib.core.context import Ctx
from chalicelib.core.errors import Conflict, Forbidden, NotFound, ValidationError
from chalicelib.core.tx import TxFailed
from chalicelib.fleetconfig import models, rules, store
from chalicelib.fleetconfig.rules import AGENT, POOL, Layer, Reported
from fleet_config import ConfigError, json_schema, parse

CHANGED = "config:changed"


@dataclass(frozen=True)
class PutPoolConfig:
    pool: str
    desired: dict[str, Any]   # a validated document (fleet_config.AgentConfig.document())
    expected_version: int


@dataclass(frozen=True)
class PutAgentConfig:
    agent_id: str
    desired: dict[str, Any]
    expected_version: int


@dataclass(frozen=True)
class ReportConfig:
    agent_id: str
    version: int
    status: str
    error: str | None = None


@dataclass(frozen=True)
class AgentState:
    """An agent's configuration as one read saw it."""

    agent: Agent
    layers: list[Layer]
    reported: Reported | None

    @property
    def version(self) -> int:
        return rules.version_of(self.layers)

    @property
    def desired(self) -> dict[str, Any]:
        return rules.desired_of(self.layers)


# --- writes -------------------------------------------------------------------------------

def put_pool(ctx: Ctx, command: PutPoolConfig) -> models.ConfigWritten:
    _check_pool(command.pool)
    layer = Layer(POOL, command.pool, command.expected_version + 1, command.desired, ctx.iso())
    members = [a for a in agents.members_of_pool(ctx.org_id, command.pool) if a.active]
    versions = _versions_with(ctx.org_id, members, layer)  # and each member's merged document checked
    tx = ctx.tx()
    tx.put("config", store.layer_put(ctx.org_id, layer, command.expected_version))
    tx.audit("configPool", command.pool, "written", {"version": layer.version, "agents": len(members)})
    in_tx, after = members[:rules.EVENTS_IN_TRANSACTION], members[rules.EVENTS_IN_TRANSACTION:]
    for agent in in_tx:
        tx.emit(CHANGED, {"agentId": agent.agent_id, "version": versions[agent.agent_id]}, agent_id=agent.agent_id)
    _commit_layer(tx, layer, command.expected_version)
    if after:
        bulk = ctx.bulk()
        for agent in after:
            bulk.emit(CHANGED, {"agentId": agent.agent_id, "version": versions[agent.agent_id]},
                      agent_id=agent.agent_id)
        bulk.commit()
    return models.ConfigWritten(version=layer.version, desired=layer.document)


def put_agent(ctx: Ctx, command: PutAgentConfig) -> models.ConfigWritten:
    agent = agents.get(ctx, command.agent_id)
    pool_layers, _, _ = store.read_agent_state(ctx.org_id, agent.agent_id, agent.pools)
    layer = Layer(AGENT, agent.agent_id, command.expected_version + 1, command.desired, ctx.iso())
    layers = rules.ordered_layers(agent.pools, pool_layers, layer)
    _check_merged(agent.agent_id, layers)
    merged_version = rules.version_of(layers)
    tx = ctx.tx()
    agents.require_exists(tx, ctx.org_id, agent.agent_id)
    tx.put("config", store.layer_put(ctx.org_id, layer, command.expected_version))
    tx.audit("configAgent", agent.agent_id, "written", {"version": layer.version})
    tx.emit(CHANGED, {"agentId": agent.agent_id, "version": merged_version}, agent_id=agent.agent_id)
    _commit_layer(tx, layer, command.expected_version)
    return models.ConfigWritten(version=layer.version, desired=layer.document)


def _commit_layer(tx: Any, layer: Layer, expected_version: int) -> None:
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name == "agent":
            raise NotFound(f"no agent {layer.name}") from None
        if failed.name != "config":
            raise
        current = int(failed.item["version"]) if failed.item and "version" in failed.item else 0
        what = f"pool {layer.name}" if layer.scope == POOL else f"agent {layer.name}"
        raise Conflict(f"the configuration of {what} is at version {current}, not {expected_version}: "
                       f"read it again and write with expectedVersion {current}",
                       [{"field": "expectedVersion", "message": f"the current version is {current}"}]) from None


def _versions_with(org_id: str, members: list[Agent], changed: Layer) -> dict[str, int]:
    """Each member's merged version once `changed` is written (the config:changed events carry it);
    400 if the write would make any member's merged document invalid."""
    if not members:
        return {}
    pools = {p for a in members for p in a.pools}
    pool_layers, agent_layers, _ = store.read_many(org_id, pools, {a.agent_id for a in members})
    pool_layers[changed.name] = changed
    versions = {}
    for agent in members:
        layers = rules.ordered_layers(agent.pools, pool_layers, agent_layers.get(agent.agent_id))
        _check_merged(agent.agent_id, layers)
        versions[agent.agent_id] = rules.version_of(layers)
    return versions


def _check_merged(agent_id: str, layers: list[Layer]) -> None:
    """Each layer is valid alone; their merge must be too (at most 64 adapters, 16 KiB): else 400."""
    try:
        parse(rules.desired_of(layers))
    except ConfigError as error:
        raise ValidationError(
            f"desired: the merged document of agent {agent_id} would be invalid: {error}",
            [{"field": "desired", "message": f"merged for agent {agent_id}: {error}"[:500]}]) from None


# --- reads --------------------------------------------------------------------------------

def get_pool(ctx: Ctx, pool: str) -> models.PoolConfig:
    _check_pool(pool)
    layer = store.get_pool(ctx.org_id, pool)
    if layer is None:  # never written: version 0, the empty document (the first write names 0)
        return models.PoolConfig(pool=pool, version=0, desired={})
    return models.PoolConfig(pool=pool, version=layer.version, desired=layer.document, updated_at=layer.updated_at)


def get_agent_config(ctx: Ctx, agent_id: str) -> models.AgentConfigView:
    """The merged document (operator, or that agent's own key)."""
    return _view(_state(ctx, agent_id))


def _state(ctx: Ctx, agent_id: str) -> AgentState:
    agent = agents.get(ctx, agent_id)  # an agent key of another agent: 403; another org's: 404
    pool_layers, agent_layer, reported = store.read_agent_state(ctx.org_id, agent.agent_id, agent.pools)
    return AgentState(agent, rules.ordered_layers(agent.pools, pool_layers, agent_layer), reported)


def _view(state: AgentState, reported: Reported | None = None) -> models.AgentConfigView:
    reported = reported if reported is not None else state.reported
    desired = state.desired
    return models.AgentConfigView(
        version=state.version, desired=desired,
        reported=models.ReportedView(version=reported.version, status=reported.status,  # type: ignore[arg-type]
                                     error=reported.error, at=reported.at) if reported else None,
        delta=rules.delta(desired, reported),
        layers=[models.LayerView(scope=layer.scope, name=layer.name, version=layer.version,
                                 updated_at=layer.updated_at) for layer in state.layers])


# --- the gateway's report -----------------------------------------------------------------

def report(ctx: Ctx, command: ReportConfig) -> models.AgentConfigView:
    """What the agent's gateway did with a version (only that agent's own key)."""
    principal = ctx.principal
    if principal is None or principal.agent_id != command.agent_id:
        raise Forbidden(f"only agent {command.agent_id} reports its configuration")
    state = _state(ctx, command.agent_id)
    problem = rules.check_report(command.version, state.version)
    if problem is not None:
        raise Conflict(problem, [{"field": "version", "message": problem}])
    if state.reported is not None and state.reported.version > command.version:
        return _view(state)  # a late report of an older version: the newer one stands
    new = rules.after_report(state.reported, command.version, command.status, command.error, ctx.iso(),
                             state.version, state.desired)
    tx = ctx.tx()
    tx.put("reported", store.reported_put(ctx.org_id, command.agent_id, new))
    tx.audit("configReported", command.agent_id, command.status, {"version": command.version})
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name != "reported":
            raise
        return _view(_state(ctx, command.agent_id))  # a newer report landed meanwhile
    return _view(state, new)


# --- the JSON Schema and the drift scan ----------------------------------------------------

def schema() -> dict[str, Any]:
    """GET /schemas/agent-config.json: the document's JSON Schema (2020-12), from fleet_config's models."""
    return json_schema()


@dataclass(frozen=True)
class Drift:
    """An agent whose gateway has not reported the desired version for CONFIG_DRIFT_MINUTES."""

    agent_id: str
    agent_name: str
    pools: list[str]
    version: int
    reported: Reported | None
    since: str   # when the desired document last changed (or the agent was registered, if later)


def drifting(ctx: Ctx, threshold_iso: str) -> list[Drift]:
    """The active agents of the context's organization that drift (rules.drifting), oldest change
    first. Cost: one Query of the org's documents, a Query per configured pool, a read per agent
    with a document of its own, and BatchGetItems of their layers and reports."""
    pools, own = store.configured(ctx.org_id)
    by_id: dict[str, Agent] = {}
    for pool in pools:
        for agent in agents.members_of_pool(ctx.org_id, pool):
            by_id.setdefault(agent.agent_id, agent)
    for agent_id in own:
        if agent_id not in by_id:
            found = agents.find(ctx.org_id, agent_id)
            if found is not None:
                by_id[agent_id] = found
    members = [a for a in by_id.values() if a.active]
    if not members:
        return []
    pool_layers, agent_layers, reports = store.read_many(
        ctx.org_id, {p for a in members for p in a.pools}, {a.agent_id for a in members})
    out = []
    for agent in members:
        layers = rules.ordered_layers(agent.pools, pool_layers, agent_layers.get(agent.agent_id))
        version, changed, reported = rules.version_of(layers), rules.changed_at(layers), reports.get(agent.agent_id)
        # An agent registered after the latest change has had its time only since it exists.
        since = max(changed, agent.created_at) if changed is not None else None
        if since is not None and rules.drifting(version, reported, since, threshold_iso):
            out.append(Drift(agent.agent_id, agent.name, agent.pools, version, reported, since))
    return sorted(out, key=lambda d: (d.since, d.agent_id))


def _check_pool(pool: str) -> None:
    if not re.match(POOL_PATTERN, pool):
        raise ValidationError.field("pool", f"must match {POOL_PATTERN}")
