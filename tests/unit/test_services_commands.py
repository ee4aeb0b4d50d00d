"""chalicelib/commands/service.py on the fake unit of work (no moto): issue, get, list, ack, expire."""
from __future__ import annotations

import pytest

from chalicelib.agents import service as agents
from chalicelib.commands import service as commands, store
from chalicelib.commands.models import Command
from chalicelib.core import clock
from chalicelib.core.auth import Scope
from chalicelib.core.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal

NOW = 1_800_000_000.0
CID = "01CMD000000000000000000000"


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def _command(**changes) -> Command:
    return Command(org_id=ORG, command_id=CID, agent_id="A1", type="restart", payload={"n": 1}, status="pending",
                   ttl_seconds=60, created_at=clock.iso(NOW - 10), expires_at=clock.iso(NOW + 50)).model_copy(
        update=changes)


def test_issue_commits_the_command_its_audit_and_command_issued_to_the_agent():
    ctx, ledger = fake_ctx(principal())
    out = commands.issue(ctx, commands.IssueCommand("A1", "restart", {"n": 1}, 60))
    body = assert_declared("POST", "/agents/{agentId}/commands", out)
    assert body["status"] == "pending" and "orgId" not in body and "ackedAt" not in body and "result" not in body
    assert ledger.names()[:2] == ["agent", "command"]
    [(name, data)] = ledger.events()
    assert name == "command:issued" and data == body  # the event carries the response, nothing more
    assert ledger.committed[-1]["command"].item["GSI3PK"] == store.SWEEP_PARTITION


def test_issue_to_a_missing_or_inactive_agent_is_404_and_an_oversized_payload_400():
    ctx, ledger = fake_ctx(principal())
    ledger.fail["agent"] = 1
    with pytest.raises(NotFound):
        commands.issue(ctx, commands.IssueCommand("A1", "restart", {}, 60))
    with pytest.raises(ValidationError):
        commands.issue(ctx, commands.IssueCommand("A1", "restart", {"x": "y" * 70_000}, 60))


def test_get_shows_a_pending_command_past_expiry_as_expired(monkeypatch):
    ctx, _ = fake_ctx(principal())
    monkeypatch.setattr(store, "get", lambda org, cid: _command(expires_at=clock.iso(NOW - 1)))
    body = assert_declared("GET", "/commands/{commandId}", commands.get(ctx, CID))
    assert body["status"] == "expired"


def test_another_agents_command_is_404_for_an_agent_key(monkeypatch):
    ctx, _ = fake_ctx(principal(Scope.AGENT, agent_id="A2"))
    monkeypatch.setattr(store, "get", lambda org, cid: _command())
    with pytest.raises(NotFound):
        commands.get(ctx, CID)


def test_list_returns_the_declared_page(monkeypatch):
    ctx, _ = fake_ctx(principal())
    monkeypatch.setattr(agents, "require_known", lambda c, a: None, raising=False)  # i20-layer drops it
    monkeypatch.setattr(store, "list_for_agent", lambda *a: ([_command(), _command(command_id="C2")], None))
    body = assert_declared("GET", "/agents/{agentId}/commands",
                           commands.list_for_agent(ctx, commands.ListCommands("A1", None, 50, None)))
    assert [c["commandId"] for c in body["items"]] == [CID, "C2"] and body["nextToken"] is None


def test_ack_moves_pending_to_the_outcome_and_a_second_ack_replays_it(monkeypatch):
    ctx, ledger = fake_ctx(principal(Scope.AGENT, agent_id="A1"))
    monkeypatch.setattr(store, "get", lambda org, cid: _command())
    body = assert_declared("POST", "/commands/{commandId}/ack",
                           commands.ack(ctx, commands.AckCommand(CID, "acked", {"ok": True})))
    assert body["status"] == "acked" and body["result"] == {"ok": True} and body["ackedAt"]
    [(name, data)] = ledger.events()
    assert name == "command:acked" and data == body
    monkeypatch.setattr(store, "get", lambda org, cid: _command(status="failed", acked_at="t", result=1))
    again = commands.ack(ctx, commands.AckCommand(CID, "acked", None))
    assert again.status == "failed" and len(ledger.committed) == 1  # the first outcome, nothing written


def test_ack_by_another_agent_is_403_and_after_expiry_409(monkeypatch):
    monkeypatch.setattr(store, "get", lambda org, cid: _command())
    with pytest.raises(Forbidden):
        commands.ack(fake_ctx(principal())[0], commands.AckCommand(CID, "acked"))
    monkeypatch.setattr(store, "get", lambda org, cid: _command(expires_at=clock.iso(NOW - 1)))
    with pytest.raises(InvalidTransition):
        commands.ack(fake_ctx(principal(Scope.AGENT, agent_id="A1"))[0], commands.AckCommand(CID, "acked"))


def test_expire_due_expires_each_due_command_in_its_org_and_skips_one_acked_meanwhile(monkeypatch):
    ctx, ledger = fake_ctx(None)
    due = [_command(), _command(command_id="C2", org_id="ORG2")]
    monkeypatch.setattr(store, "due_for_expiry", lambda now, limit, start: (due, None))
    ledger.fail["command"] = 1  # the first one was acked meanwhile
    assert commands.expire_due(ctx) == 1
    [audit] = ledger.audits()
    assert audit["orgId"] == "ORG2" and audit["action"] == "expired"


def test_the_pending_sort_key_puts_higher_priorities_first_and_older_first_within_one():
    from chalicelib.commands import rules

    keys = [rules.pending_sort_key(p, cid) for p, cid in
            [("low", "01A"), ("normal", "01B"), ("high", "01C"), ("high", "01D"), ("normal", "01E")]]
    assert sorted(keys) == ["0#01C", "0#01D", "1#01B", "1#01E", "2#01A"]
    # a command stored before priorities (bare id) sorts between high and normal: older than any normal one
    assert "0#01Z" < "01ABC" < "1#01A"


def test_issue_with_a_priority_keys_the_pending_list_by_it_and_ack_restores_the_id():
    ctx, ledger = fake_ctx(principal())
    out = commands.issue(ctx, commands.IssueCommand("A1", "restart", {}, 60, "high"))
    item = ledger.committed[-1]["command"].item
    assert out.priority == "high" and item["priority"] == "high" and item["GSI1SK"] == f"0#{out.command_id}"
    assert store.leave_pending(out, "acked", clock.iso(NOW)).set["GSI1SK"] == out.command_id
