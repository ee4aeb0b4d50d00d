"""chalicelib/agents/service.py on the fake unit of work (no moto): reads, lists and the checks it lends others."""
from __future__ import annotations

import pytest

from chalicelib.agents import models, service as agents, store
from chalicelib.agents.models import Agent
from chalicelib.core.auth import Scope
from chalicelib.core.errors import Forbidden, NotFound
from chalicelib.core.paging import next_token
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal


def _agent(agent_id: str = "A1", **changes: object) -> Agent:
    return Agent(agent_id=agent_id, name="a", pools=["p"], status="active", created_at="c").model_copy(update=changes)


def test_get_answers_the_declared_agent_and_404_for_one_the_org_lacks(monkeypatch):
    monkeypatch.setattr(store, "get", lambda org, aid, consistent=False: _agent() if aid == "A1" else None)
    ctx = fake_ctx(principal())[0]
    body = assert_declared("GET", "/agents/{agentId}", agents.get(ctx, "A1"))
    assert body["agentId"] == "A1" and body["pools"] == ["p"]
    with pytest.raises(NotFound):
        agents.get(ctx, "A2")


def test_an_agent_key_reads_only_its_own_agent_and_without_a_read_for_another(monkeypatch):
    monkeypatch.setattr(store, "get", lambda *a, **k: pytest.fail("read"))
    with pytest.raises(Forbidden):
        agents.get(fake_ctx(principal(Scope.AGENT, "A1"))[0], "A2")


def test_list_reads_the_pool_index_only_when_a_pool_is_asked_and_signs_its_token(monkeypatch):
    asked = []
    monkeypatch.setattr(store, "list_agents",
                        lambda org, limit, start: asked.append("all") or store.AgentPage([_agent()], None))
    monkeypatch.setattr(store, "list_pool", lambda org, pool, limit, start: asked.append(pool) or store.AgentPage(
        [_agent("A2")], {"PK": "x", "SK": "y"}))
    ctx = fake_ctx(principal())[0]
    everyone = assert_declared("GET", "/agents", agents.list_agents(ctx, models.AgentListQuery()))
    pooled = agents.list_agents(ctx, models.AgentListQuery(pool="p"))
    assert asked == ["all", "p"] and everyone["nextToken"] is None
    assert [a.agent_id for a in pooled.items] == ["A2"]
    assert pooled.next_token == next_token({"PK": "x", "SK": "y"}, f"agents:{ORG}:p")  # scoped to org and pool


def test_require_known_needs_no_read_for_an_agent_keys_own_agent_and_404s_an_unknown_one(monkeypatch):
    monkeypatch.setattr(store, "get", lambda *a, **k: pytest.fail("read"))
    agents.require_known(fake_ctx(principal(Scope.AGENT, "A1"))[0], "A1")
    monkeypatch.setattr(store, "get", lambda org, aid, consistent=False: None)
    with pytest.raises(NotFound):
        agents.require_known(fake_ctx(principal())[0], "A9")


def test_the_checks_it_lends_ride_in_the_callers_unit_of_work_under_the_name_asked():
    ctx, ledger = fake_ctx(principal())
    tx = ctx.tx()
    agents.require_active(tx, ORG, "A1")
    agents.require_exists(tx, ORG, "A2", name="owner")
    agents.require_heartbeat_unchanged(tx, ORG, "A1", None, name="heartbeat")
    tx.commit()
    assert ledger.names() == ["agent", "owner", "heartbeat"]
    checks = ledger.committed[-1]
    assert ":active" in checks["agent"].values and "attribute_not_exists(heartbeatMs)" in checks["heartbeat"].condition
