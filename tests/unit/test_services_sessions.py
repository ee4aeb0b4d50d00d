"""Sessions: the service's decisions and what it commits, on the fake unit of work (no AWS)."""
from __future__ import annotations

import pytest

from chalicelib.core import clock
from chalicelib.core.auth import Scope
from chalicelib.core.errors import InvalidTransition, NotFound, Unavailable
from chalicelib.sessions import service as sessions, store
from chalicelib.sessions.models import Session, SessionList
from chalicelib.sessions.rules import Status
from tests.unit.fakes import ORG, fake_ctx, principal

NOW = 1_800_000_000.0
SID = "01SESS00000000000000000000"


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def _session(**changes) -> Session:
    base = Session(session_id=SID, agent_role="builder", status=Status.PENDING, created_at="c", updated_at="u",
                   metadata={"a": 1}, owner_agent_id="A1")
    return base.model_copy(update=changes)


def test_create_returns_the_entity_and_commits_session_list_counts_audit_event():
    ctx, ledger = fake_ctx(principal(Scope.AGENT, agent_id="A1"))
    out = sessions.create(ctx, sessions.CreateSession("builder", None, {"k": {"n": None}}))
    assert isinstance(out, Session) and out.status is Status.PENDING and out.owner_agent_id == "A1"
    names = ledger.names()
    assert names[:3] == ["session", "list", "counts"]
    item = ledger.committed[-1]["session"].item
    assert item["metadata"] == {"k": '{"n":null}'} and item["orgId"] == ORG and "GSI4PK" in item
    (event, data), = ledger.events()
    assert event == "session:updated" and "ownerAgentId" not in data and data["metadata"] == {"k": {"n": None}}
    assert store.from_item(item) == out  # the item mapping round-trips the entity


def test_get_is_404_for_an_id_we_never_minted_without_a_read(monkeypatch):
    ctx, _ = fake_ctx(principal())
    monkeypatch.setattr(store, "get", lambda *a: pytest.fail("no read for an impossible id"))
    with pytest.raises(NotFound):
        sessions.get(ctx, "nope")


def test_update_moves_status_and_counts_and_a_final_session_refuses_edits(monkeypatch):
    ctx, ledger = fake_ctx(principal())
    monkeypatch.setattr(store, "get", lambda org, sid: _session())
    out = sessions.update(ctx, sessions.UpdateSession(SID, Status.ACTIVE, metadata={"a": None, "b": 2}))
    assert out.status is Status.ACTIVE and out.metadata == {"b": 2}
    assert ledger.names()[:2] == ["session", "counts"]
    monkeypatch.setattr(store, "get", lambda org, sid: _session(status=Status.COMPLETED))
    with pytest.raises(InvalidTransition):
        sessions.update(ctx, sessions.UpdateSession(SID, task_id="T"))


def test_update_rereads_after_a_lost_condition_and_gives_up_with_503(monkeypatch):
    ctx, ledger = fake_ctx(principal())
    monkeypatch.setattr(store, "get", lambda org, sid: _session())
    ledger.fail["session"] = 1
    assert sessions.update(ctx, sessions.UpdateSession(SID, Status.ACTIVE)).status is Status.ACTIVE
    assert len(ledger.attempts) == 2
    ledger.fail["session"] = 100
    with pytest.raises(Unavailable):
        sessions.update(ctx, sessions.UpdateSession(SID, Status.ACTIVE))


def test_list_returns_the_page_model_with_total_from_the_counters(monkeypatch):
    ctx, _ = fake_ctx(principal())
    from chalicelib.aws.dynamo import Page

    monkeypatch.setattr(store, "list_keys", lambda *a, **k: Page([{"PK": "p", "SK": "LIST", "GSI5PK": "g",
                                                                   "GSI5SK": SID}], None))
    monkeypatch.setattr(store, "batch_with_counts", lambda org, keys: ([_session()], {"all": 7}))
    out = sessions.list_sessions(ctx, sessions.ListSessions())
    assert isinstance(out, SessionList) and out.total == 7 and out.sessions == [_session()] and out.next_token is None


def test_expiry_acts_for_each_sessions_org(monkeypatch):
    ctx, ledger = fake_ctx(None, system_org=None)
    calls = iter([([("ORG2", _session(status=Status.ACTIVE))], None)])
    monkeypatch.setattr(store, "open_before", lambda *a: next(calls, ([], None)))
    assert sessions.expire_old(ctx) == {"expired": 1, "skipped": 0}
    assert ledger.committed[-1]["session"].key["PK"].startswith("ORG#ORG2#")
