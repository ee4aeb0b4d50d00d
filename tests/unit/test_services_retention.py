"""The retention sweeps' decisions and what they commit, on the fake unit of work (no AWS)."""
from __future__ import annotations

import pytest

from chalicelib.aws import dynamo
from chalicelib.core import clock
from chalicelib.retention import service as retention
from chalicelib.retention import store
from chalicelib.sessions import service as sessions
from chalicelib.sessions import store as sessions_store
from chalicelib.sessions.models import Session
from chalicelib.sessions.rules import Status
from tests.unit.fakes import ORG, fake_ctx

NOW = 1_800_000_000.0


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def test_each_page_deletes_what_it_found_and_moves_the_cursor_in_one_commit(monkeypatch):
    ctx, ledger = fake_ctx()
    pages = {None: dynamo.Page([{"PK": "a", "SK": "1", "ttl": 1}, {"PK": "b", "SK": "1", "ttl": 2}], {"PK": "b"}),
             "b": dynamo.Page([], None)}
    monkeypatch.setattr(store, "cursor", lambda: store.Cursor())
    monkeypatch.setattr(store, "expired_page",
                        lambda table, start, now: pages[start["PK"] if start else None] if table.role == "main"
                        else dynamo.Page([], None))
    out = retention.sweep(ctx, pages=2)
    assert out == {"pages": 2, "deleted": 2, "finished": False}
    first, second = ledger.committed
    assert list(first) == ["expired:0", "expired:1", "cursor"]
    assert first["expired:0"].key == {"PK": "a", "SK": "1"} and first["expired:0"].condition == "#ttl <= :now"
    assert first["cursor"].item["table"] == 0 and first["cursor"].item["startKey"] == '{"PK":"b"}'
    assert list(second) == ["cursor"] and second["cursor"].item["table"] == 1  # main done: the outbox next


def test_a_lap_ends_after_the_last_table_and_the_run_stops_there(monkeypatch):
    ctx, ledger = fake_ctx()
    monkeypatch.setattr(store, "cursor", lambda: store.Cursor(table=len(store.TTL_TABLES) - 1))
    monkeypatch.setattr(store, "expired_page", lambda table, start, now: dynamo.Page([], None))
    assert retention.sweep(ctx, pages=10) == {"pages": 1, "deleted": 0, "finished": True}
    assert "startKey" not in ledger.committed[-1]["cursor"].item and ledger.committed[-1]["cursor"].item["table"] == 0


def test_an_item_renewed_since_the_scan_is_dropped_and_the_rest_committed(monkeypatch):
    ctx, ledger = fake_ctx()
    monkeypatch.setattr(store, "cursor", lambda: store.Cursor())
    monkeypatch.setattr(store, "expired_page", lambda table, start, now: dynamo.Page(
        [{"PK": "a", "SK": "1"}, {"PK": "b", "SK": "1"}], None))
    ledger.fail["expired:1"] = 1
    assert retention.sweep(ctx, pages=1)["deleted"] == 1
    assert list(ledger.committed[0]) == ["expired:0", "cursor"]


def test_an_ended_session_goes_with_its_list_entry_and_its_counts_and_an_audit_entry(monkeypatch):
    ctx, ledger = fake_ctx()
    ended = Session(session_id="01SESS00000000000000000000", agent_role="r", status=Status.COMPLETED,
                    created_at="c", updated_at="2027-01-01T00:00:00.000Z")
    seen: list[tuple[int, str]] = []

    def ended_before(shard: int, bound: str, limit: int) -> list[tuple[str, Session]]:
        seen.append((shard, bound))
        return [(ORG, ended)] if shard == 0 and len(seen) == 1 else []

    monkeypatch.setattr(sessions_store, "ended_before", ended_before)
    out = sessions.purge_ended(ctx, pages=5)
    assert out == {"deleted": 1, "skipped": 0, "finished": True}
    names = ledger.names()
    assert names[:3] == ["session", "list", "counts"] and names[3].startswith("audit:session:")
    writes = ledger.committed[0]
    assert writes["session"].condition == "#st = :st" and writes["session"].values == {":st": "completed"}
    assert writes["counts"].add == {"all": -1, "completed": -1}
    assert ledger.audits()[0]["action"] == "deleted" and ledger.audits()[0]["actor"] == "system"
    # the bound: ended before now - EXPIRED_SESSION_RETENTION_DAYS (30)
    assert seen[0][1] == clock.iso(NOW - 30 * 86400)
