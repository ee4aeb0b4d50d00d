"""chalicelib/fleetconfig/service.py on the fake unit of work (no moto): writes with their audit and
config:changed events, the 409 of a stale version, the merged view, reports, drift; and its pure rules."""
from __future__ import annotations

import pytest

from chalicelib.agents import service as agents
from chalicelib.agents.models import Agent
from chalicelib.core import clock
from chalicelib.core.auth import Scope
from chalicelib.core.errors import Conflict, Forbidden, NotFound, ValidationError
from chalicelib.fleetconfig import rules, service as fleetconfig, store
from chalicelib.fleetconfig.rules import Layer, Reported
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal

NOW = 1_800_000_000.0
T0 = clock.iso(NOW - 3600)


def _agent(agent_id: str, pools: list[str], status: str = "active") -> Agent:
    return Agent(agent_id=agent_id, name=agent_id.lower(), pools=pools, status=status,  # type: ignore[arg-type]
                 created_at=T0, updated_at=T0)


@pytest.fixture
def world(monkeypatch):
    """Agents A1 (pools site, eu), A2 (site), A3 (site, inactive); documents and reports as the test sets them."""
    monkeypatch.setattr(clock, "now", lambda: NOW)
    state = {"agents": {"A1": _agent("A1", ["site", "eu"]), "A2": _agent("A2", ["site"]),
                        "A3": _agent("A3", ["site"], "inactive")},
             "pools": {}, "own": {}, "reports": {}}

    def get(ctx, agent_id):
        ctx.require_agent(agent_id)
        if agent_id not in state["agents"]:
            raise NotFound(f"no agent {agent_id}")
        return state["agents"][agent_id]

    monkeypatch.setattr(agents, "get", get)
    monkeypatch.setattr(agents, "find", lambda org, agent_id: state["agents"].get(agent_id))
    monkeypatch.setattr(agents, "members_of_pool",
                        lambda org, pool: iter([a for a in state["agents"].values() if pool in a.pools]))
    monkeypatch.setattr(store, "read_agent_state", lambda org, agent_id, pools: (
        {p: state["pools"][p] for p in pools if p in state["pools"]}, state["own"].get(agent_id),
        state["reports"].get(agent_id)))
    monkeypatch.setattr(store, "read_many", lambda org, pools, ids: (
        {p: state["pools"][p] for p in pools if p in state["pools"]},
        {a: state["own"][a] for a in ids if a in state["own"]},
        {a: state["reports"][a] for a in ids if a in state["reports"]}))
    monkeypatch.setattr(store, "get_pool", lambda org, pool: state["pools"].get(pool))
    monkeypatch.setattr(store, "configured", lambda org: (sorted(state["pools"]), sorted(state["own"])))
    return state


def test_a_pool_write_commits_the_document_its_audit_and_an_event_per_active_member(world):
    world["own"]["A1"] = Layer("agent", "A1", 4, {"logLevel": "ERROR"}, T0)
    ctx, ledger = fake_ctx(principal())
    out = fleetconfig.put_pool(ctx, fleetconfig.PutPoolConfig("site", {"logLevel": "INFO"}, 0))
    assert assert_declared("PUT", "/config/pools/{pool}", out) == {"version": 1, "desired": {"logLevel": "INFO"}}
    names = ledger.names()
    assert names[0] == "config" and names[1].startswith("audit:configPool:site")
    put = ledger.committed[-1]["config"]
    assert put.condition == "attribute_not_exists(PK)" and put.item["version"] == 1
    assert ledger.events() == [("config:changed", {"agentId": "A1", "version": 5}),  # 4 (own) + 1
                                       ("config:changed", {"agentId": "A2", "version": 1})]   # A3 is inactive


def test_a_later_write_is_conditioned_on_the_version_it_replaces(world):
    ctx, ledger = fake_ctx(principal())
    fleetconfig.put_pool(ctx, fleetconfig.PutPoolConfig("site", {}, 6))
    put = ledger.committed[-1]["config"]
    assert put.condition == "#v = :expected" and put.values == {":expected": 6} and put.item["version"] == 7


def test_a_stale_version_is_409_naming_the_current_one(world):
    ctx, ledger = fake_ctx(principal())
    ledger.fail["config"] = 1
    ledger.returned["config"] = {"version": 3}
    with pytest.raises(Conflict) as caught:
        fleetconfig.put_pool(ctx, fleetconfig.PutPoolConfig("site", {}, 1))
    assert caught.value.details == [{"field": "expectedVersion", "message": "the current version is 3"}]
    assert ledger.committed == []


def test_a_pool_name_outside_the_alphabet_is_400():
    ctx, _ = fake_ctx(principal())
    with pytest.raises(ValidationError):
        fleetconfig.put_pool(ctx, fleetconfig.PutPoolConfig("no such/pool", {}, 0))


def test_an_agent_write_checks_the_agent_and_emits_its_merged_version(world):
    world["pools"]["site"] = Layer("pool", "site", 2, {"logLevel": "INFO"}, T0)
    world["pools"]["eu"] = Layer("pool", "eu", 5, {}, T0)
    ctx, ledger = fake_ctx(principal())
    out = fleetconfig.put_agent(ctx, fleetconfig.PutAgentConfig("A1", {"logLevel": "DEBUG"}, 0))
    assert out.version == 1
    assert ledger.names()[:2] == ["agent", "config"]
    assert ledger.events() == [("config:changed", {"agentId": "A1", "version": 8})]
    ledger.fail["agent"] = 1
    with pytest.raises(NotFound):
        fleetconfig.put_agent(ctx, fleetconfig.PutAgentConfig("A1", {}, 1))
    with pytest.raises(NotFound):
        fleetconfig.put_agent(ctx, fleetconfig.PutAgentConfig("A9", {}, 0))


def test_the_view_merges_in_the_agents_pool_order(world):
    world["pools"]["site"] = Layer("pool", "site", 2, {"logLevel": "INFO", "buffer": {"maxDbMb": 1, "onFull": "refuse"}}, T0)
    world["pools"]["eu"] = Layer("pool", "eu", 1, {"logLevel": "WARN"}, clock.iso(NOW - 60))
    ctx, _ = fake_ctx(principal(Scope.AGENT, agent_id="A1"))
    view = fleetconfig.get_agent_config(ctx, "A1")
    body = assert_declared("GET", "/agents/{agentId}/config", view)
    assert body["version"] == 3 and body["desired"] == {"logLevel": "WARN", "buffer": {"maxDbMb": 1, "onFull": "refuse"}}
    assert body["reported"] is None and body["delta"] == body["desired"]
    with pytest.raises(Forbidden):
        fleetconfig.get_agent_config(ctx, "A2")


def test_reports(world):
    world["pools"]["site"] = Layer("pool", "site", 2, {"logLevel": "INFO"}, T0)
    ctx, ledger = fake_ctx(principal(Scope.AGENT, agent_id="A2"))
    view = fleetconfig.report(ctx, fleetconfig.ReportConfig("A2", 2, "applied"))
    assert assert_declared("POST", "/agents/{agentId}/config/reported", view)["delta"] == {}
    item = ledger.committed[-1]["reported"].item
    assert (item["version"], item["status"], item["appliedVersion"], item["appliedJson"]) == (
        2, "applied", 2, '{"logLevel":"INFO"}')
    with pytest.raises(Conflict):
        fleetconfig.report(ctx, fleetconfig.ReportConfig("A2", 3, "applied"))
    with pytest.raises(Forbidden):
        fleetconfig.report(fake_ctx(principal())[0], fleetconfig.ReportConfig("A2", 2, "applied"))
    # a newer report already stands: an older one changes nothing
    world["reports"]["A2"] = Reported(2, "applied", T0, None, 2, {"logLevel": "INFO"})
    before = len(ledger.committed)
    assert fleetconfig.report(ctx, fleetconfig.ReportConfig("A2", 1, "failed", "x")).reported.version == 2
    assert len(ledger.committed) == before


def test_drift_lists_active_agents_behind_their_desired_version_for_long_enough(world):
    world["pools"]["site"] = Layer("pool", "site", 2, {"logLevel": "INFO"}, clock.iso(NOW - 3600))
    world["own"]["A1"] = Layer("agent", "A1", 1, {}, clock.iso(NOW - 7200))
    world["reports"]["A2"] = Reported(2, "applied", T0, None, 2, {"logLevel": "INFO"})  # in sync
    ctx, _ = fake_ctx()
    threshold = clock.iso(NOW - 1800)
    [drift] = fleetconfig.drifting(ctx, threshold)
    assert (drift.agent_id, drift.pools, drift.version, drift.since) == ("A1", ["site", "eu"], 3, clock.iso(NOW - 3600))
    assert fleetconfig.drifting(ctx, clock.iso(NOW - 3601)) == []  # the latest change is younger than that


def test_the_schema_is_fleet_configs():
    schema = fleetconfig.schema()
    assert schema["$id"].endswith("agent-config.json") and schema["additionalProperties"] is False


# --- rules (pure) ----------------------------------------------------------------------

def test_the_merged_version_rises_by_one_on_every_write_of_any_layer():
    site, eu, own = Layer("pool", "site", 3, {}, T0), Layer("pool", "eu", 1, {}, T0), Layer("agent", "A", 2, {}, T0)
    layers = rules.ordered_layers(["eu", "site", "none"], {"site": site, "eu": eu}, own)
    assert [layer.name for layer in layers] == ["eu", "site", "A"] and rules.version_of(layers) == 6
    assert rules.version_of(rules.ordered_layers(["eu"], {}, None)) == 0


def test_after_report_keeps_the_last_applied_document():
    first = rules.after_report(None, 3, "applied", None, "t1", 3, {"logLevel": "INFO"})
    assert (first.applied_version, first.applied_document) == (3, {"logLevel": "INFO"})
    failed = rules.after_report(first, 4, "failed", "boom" * 1000, "t2", 4, {"logLevel": "DEBUG"})
    assert failed.applied_document == {"logLevel": "INFO"} and len(failed.error or "") == rules.MAX_ERROR_CHARS
    assert rules.delta({"logLevel": "DEBUG"}, failed) == {"logLevel": "DEBUG"}
    overtaken = rules.after_report(first, 4, "applied", "ignored", "t3", 5, {"logLevel": "WARN"})
    assert overtaken.applied_document is None and overtaken.error is None
    assert rules.delta({"logLevel": "WARN"}, overtaken) == {"logLevel": "WARN"}


@pytest.mark.parametrize("version, reported, since, drifts", [
    (0, None, None, False),                                   # nothing configured
    (2, None, "2026-01-01T00:00:00.000Z", True),              # never reported
    (2, Reported(2, "applied", "t"), "2026-01-01T00:00:00.000Z", False),
    (2, Reported(2, "failed", "t"), "2026-01-01T00:00:00.000Z", True),   # runs an older document
    (3, Reported(2, "applied", "t"), "2026-01-01T00:00:00.000Z", True),
    (3, Reported(2, "applied", "t"), "2026-06-01T00:00:00.000Z", False),  # changed after the threshold
])
def test_drifting(version, reported, since, drifts):
    assert rules.drifting(version, reported, since, "2026-03-01T00:00:00.000Z") is drifts


def test_the_org_is_in_every_key():
    assert store.pool_key(ORG, "site")["PK"].startswith(f"ORG#{ORG}#") and store.agent_key(ORG, "A")["PK"].startswith(
        f"ORG#{ORG}#AGENT#")
