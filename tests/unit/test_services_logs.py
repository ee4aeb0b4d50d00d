"""chalicelib/logs (service and failures) on fakes, no moto: what push and read return is what the routes declare."""
from __future__ import annotations

import json

import pytest

from chalicelib.core.auth import Scope
from chalicelib.core.errors import NotFound
from chalicelib.instances import service as instances
from chalicelib.logs import failures, models, service as logs, store
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal

IID = "01INST00000000000000000000"


class _Instance:
    instance_id, agent_id = IID, "A1"


def _entry(entry_id: str, level: str = "INFO", fields: dict | None = None) -> models.LogEntry:
    return models.LogEntry(org_id=ORG, id=entry_id, instance_id=IID, timestamp="2027-01-01T00:00:00.000Z",
                           level=level, message="m", fields=fields, expires_at=1)


@pytest.fixture
def instance(monkeypatch):
    monkeypatch.setattr(instances, "load", lambda ctx, iid: _Instance())


def test_push_answers_the_declared_result_and_its_event_carries_the_entries_json(instance, monkeypatch):
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    pushed = [models.LogEntryIn(level="error", message="boom", fields={"k": None})]
    out = logs.push(ctx, logs.PushLogs(IID, pushed))
    assert assert_declared("POST", "/instances/{instanceId}/logs", out) == {"accepted": 1}
    assert ledger.bulk == [True] and ledger.names() == ["entry:0", "event:1:instance:log"]  # entries first
    [entry] = ledger.items("entry:")
    [event] = ledger.items("event:")
    [shown] = json.loads(event["data"])["entries"]
    assert entry["orgId"] == ORG and entry["ttl"] > 0
    assert shown == {"id": entry["id"], "instanceId": IID, "timestamp": entry["timestamp"], "level": "ERROR",
                     "message": "boom", "fields": {"k": None}}  # no org, no ttl; nulls inside fields kept


def test_read_returns_the_store_entries_as_declared(instance, monkeypatch):
    monkeypatch.setattr(store, "query", lambda *a, **k: [_entry("E1"), _entry("E2", fields={"a": 1})])
    ctx, _ = fake_ctx(principal())
    body = assert_declared("GET", "/instances/{instanceId}/logs",
                           logs.read(ctx, logs.ReadLogs(IID, models.LogQuery())))
    assert [e["id"] for e in body] == ["E1", "E2"] and "fields" not in body[0] and body[1]["fields"] == {"a": 1}


def test_read_of_an_unknown_instance_is_404(monkeypatch):
    def missing(ctx, iid):
        raise NotFound(f"no instance {iid}")

    monkeypatch.setattr(instances, "load", missing)
    with pytest.raises(NotFound):
        logs.read(fake_ctx(principal())[0], logs.ReadLogs(IID, models.LogQuery()))


def test_error_entries_for_the_ops_scan_carry_the_entry_and_a_cursor(monkeypatch):
    monkeypatch.setattr(store, "error_entries", lambda org, after, limit: [_entry("E1", "ERROR"), _entry("E2", "ERROR")])
    entries, cursor = failures.error_entries(fake_ctx(principal())[0], None, 10)
    assert cursor == "E2" and entries[0] == {**_entry("E1", "ERROR").as_json(), "cursor": "E1"}
    assert "orgId" not in entries[0]
