"""Instance logs over HTTP: push, read (limit/since/level), the contract's 4xx, events, retention."""
from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import boto3
import pytest

from tests.handlers.test_instances import create, operator_key, register_agent

T0 = "2026-11-01T10:00:00.000Z"


def ts(second: int, ms: int = 0) -> str:
    return f"2026-11-01T10:{second // 60:02d}:{second % 60:02d}.{ms:03d}Z"


@pytest.fixture
def setup(http, org):
    ops = operator_key(http, org)
    owner, other = register_agent(http, org, "owner"), register_agent(http, org, "other")
    instance = create(http, ops, owner["agentId"], gameType="ark-sa")
    return {"ops": ops, "agent": owner["apiKey"], "agent_id": owner["agentId"], "other_agent": other["apiKey"],
            "iid": instance["instanceId"], "org": org}


def push(http, key, iid, entries, **kw):
    return http.post(f"/instances/{iid}/logs", key, {"entries": entries}, **kw)


def read(http, key, iid, **params):
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return http.get(f"/instances/{iid}/logs" + (f"?{query}" if query else ""), key)


def test_push_then_read_oldest_first(http, setup):
    s = setup
    entries = [{"timestamp": ts(i), "level": lvl, "message": f"m{i}"}
               for i, lvl in enumerate(["info", "Warn", "ERROR", "debug", "TRACE"])]
    entries[1]["fields"] = {"player": "Rex", "hp": 12.5, "tags": [], "none": None}
    r = push(http, s["agent"], s["iid"], list(reversed(entries)))
    assert r.status == 202 and r.json == {"accepted": 5}
    got = read(http, s["agent"], s["iid"])
    assert got.status == 200
    assert [e["message"] for e in got.json] == ["m0", "m1", "m2", "m3", "m4"]
    assert [e["level"] for e in got.json] == ["INFO", "WARN", "ERROR", "DEBUG", "TRACE"]
    assert got.json[1]["fields"] == {"player": "Rex", "hp": 12.5, "tags": [], "none": None}
    assert "fields" not in got.json[0]
    assert all(e["instanceId"] == s["iid"] and len(e["id"]) == 26 for e in got.json)
    assert got.json[0]["timestamp"] == T0
    # operators read too
    assert read(http, s["ops"], s["iid"]).json == got.json


def test_entries_without_timestamp_get_receive_time_and_keep_their_order(http, setup):
    s = setup
    before = time.time()
    assert push(http, s["agent"], s["iid"], [{"level": "INFO", "message": f"n{i}"} for i in range(60)]).status == 202
    after = time.time()
    got = read(http, s["agent"], s["iid"], limit=100).json
    assert [e["message"] for e in got] == [f"n{i}" for i in range(60)]
    from chalicelib.core.clock import parse_iso
    assert all(before - 0.001 <= parse_iso(e["timestamp"]) <= after + 0.001 for e in got)


def test_limit_since_and_level(http, setup):
    s = setup
    entries = [{"timestamp": ts(i // 2), "level": "ERROR" if i % 3 == 0 else "INFO", "message": f"m{i}"}
               for i in range(20)]  # two entries per second: ties on timestamp
    assert push(http, s["agent"], s["iid"], entries).status == 202
    msgs = lambda r: [e["message"] for e in r.json]  # noqa: E731
    assert msgs(read(http, s["agent"], s["iid"], limit=3)) == ["m17", "m18", "m19"]       # newest 3, oldest first
    assert msgs(read(http, s["agent"], s["iid"], limit=3, since=ts(4))) == ["m10", "m11", "m12"]  # strictly after
    assert msgs(read(http, s["agent"], s["iid"], limit=3, since="2026-11-01T10:00:04.0004Z")) == ["m10", "m11", "m12"]
    assert msgs(read(http, s["agent"], s["iid"], limit=100, since=ts(9))) == []
    assert msgs(read(http, s["agent"], s["iid"], limit=2, level="error")) == ["m15", "m18"]
    assert msgs(read(http, s["agent"], s["iid"], limit=2, level="Error", since=ts(1))) == ["m6", "m9"]  # m3 is at ts(1)
    assert msgs(read(http, s["agent"], s["iid"], limit=2, level="Error", since=ts(0))) == ["m3", "m6"]
    assert msgs(read(http, s["agent"], s["iid"], limit=5, level="warn")) == []
    # since may be a log entry id: a lossless cursor between entries of one timestamp
    all_entries = read(http, s["agent"], s["iid"], limit=100).json
    cursor = all_entries[8]["id"]  # m8, which shares its second with m9
    assert msgs(read(http, s["agent"], s["iid"], limit=2, since=cursor)) == ["m9", "m10"]
    # an offset in since is honoured
    assert msgs(read(http, s["agent"], s["iid"], limit=1, since="2026-11-01T11:00:08+01:00")) == ["m18"]


@pytest.mark.parametrize("params, field", [
    ({"limit": "1001"}, "limit"), ({"limit": "0"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"level": "VERBOSE"}, "level"), ({"level": ""}, "level"), ({"since": "yesterday"}, "since"),
    ({"colour": "red"}, "colour"),
])
def test_read_rejects_bad_query(http, setup, params, field):
    r = read(http, setup["agent"], setup["iid"], **params)
    assert r.status == 400, r.json
    assert r.json["error"]["code"] == "VALIDATION_ERROR"
    assert r.json["error"]["details"][0]["field"] == field


@pytest.mark.parametrize("entries, field", [
    ([{"level": "INFO", "message": "x"}] * 501, "entries"),
    ([], "entries"),
    ([{"level": "NOTICE", "message": "x"}], "entries.0.level"),
    ([{"level": "INFO"}], "entries.0.message"),
    ([{"level": "INFO", "message": "x", "timestamp": "soon"}], "entries.0.timestamp"),
    ([{"level": "INFO", "message": "x"}, {"level": "INFO", "message": "x", "timestamp": "2999-01-01T00:00:00Z"}],
     "entries.1.timestamp"),
    ([{"level": "INFO", "message": "x", "timestamp": "1969-12-31T23:59:59Z"}], "entries.0.timestamp"),
    ([{"level": "INFO", "message": "x" * 40000}], "entries.0.message"),
    ([{"level": "INFO", "message": "\u00e9" * 12000}], "entries.0"),  # > 64 KiB once escaped as JSON
])
def test_push_rejects_bad_batches(http, setup, entries, field):
    r = push(http, setup["agent"], setup["iid"], entries)
    assert r.status == 400, r.json
    assert r.json["error"]["details"][0]["field"] == field
    assert read(http, setup["agent"], setup["iid"]).json == []  # nothing stored


def test_500_entries_is_the_maximum(http, setup):
    r = push(http, setup["agent"], setup["iid"], [{"level": "INFO", "message": f"x{i}"} for i in range(500)])
    assert r.status == 202 and r.json == {"accepted": 500}
    assert len(read(http, setup["agent"], setup["iid"], limit=1000).json) == 500


def test_only_the_owning_agent_or_an_operator_pushes(http, setup):
    s = setup
    entry = [{"level": "INFO", "message": "x"}]
    r = push(http, s["other_agent"], s["iid"], entry)
    assert r.status == 403 and r.json["error"]["code"] == "FORBIDDEN"
    assert read(http, s["other_agent"], s["iid"]).status == 403
    assert read(http, s["ops"], s["iid"]).json == []
    assert push(http, s["ops"], s["iid"], entry).status == 202
    assert push(http, s["agent"], s["iid"], entry).status == 202
    assert len(read(http, s["ops"], s["iid"]).json) == 2


def test_unknown_and_other_org_instance(http, setup, root):
    s = setup
    entry = [{"level": "INFO", "message": "x"}]
    for key in (s["agent"], s["ops"]):
        assert push(http, key, "01ARZ3NDEKTSV4RRFFQ69G5FAV", entry).status == 404
        assert read(http, key, "01ARZ3NDEKTSV4RRFFQ69G5FAV").status == 404
        assert push(http, key, "nope", entry).status == 404
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    r = push(http, other["adminKey"], s["iid"], entry)
    assert r.status == 404 and r.json["error"]["code"] == "NOT_FOUND"
    assert read(http, other["adminKey"], s["iid"]).status == 404
    assert read(http, s["ops"], s["iid"]).json == []
    assert push(http, None, s["iid"], entry).status == 401


def test_push_emits_instance_log_with_the_stored_entries(http, setup, outbox):
    s = setup
    outbox.drain()
    push(http, s["agent"], s["iid"], [{"level": "warn", "message": "low food", "fields": {"dino": "Rex"}}])
    events = [e for e in outbox.drain() if e["event"] == "instance:log"]
    assert len(events) == 1
    event = events[0]
    assert event["orgId"] == s["org"]["orgId"] and event["agentId"] == s["agent_id"]
    assert event["data"]["instanceId"] == s["iid"] and event["data"]["agentId"] == s["agent_id"]
    assert event["data"]["entries"] == read(http, s["agent"], s["iid"]).json


def test_large_batches_are_split_into_events_under_the_websocket_limit(http, setup, outbox):
    s = setup
    outbox.drain()
    entries = [{"level": "INFO", "message": f"{i:04d} " + "x" * 450} for i in range(500)]  # ~240 KB
    assert push(http, s["agent"], s["iid"], entries).status == 202
    events = [e for e in outbox.drain() if e["event"] == "instance:log"]
    assert len(events) >= 3
    for e in events:
        wire = json.dumps({"event": e["event"], "data": e["data"]}, separators=(",", ":")).encode()
        assert len(wire) < 128 * 1024 - 8 * 1024
    together = [entry for e in events for entry in e["data"]["entries"]]
    assert together == read(http, s["agent"], s["iid"], limit=1000).json


def test_retention_ttl_and_expired_entries_are_not_returned(http, setup, monkeypatch):
    from chalicelib.core import config
    from chalicelib.core.config import settings
    from chalicelib.logs import store

    s = setup
    monkeypatch.setenv("LOG_RETENTION_DAYS", "3")
    config.settings.cache_clear()
    try:
        before = int(time.time())
        push(http, s["agent"], s["iid"], [{"level": "INFO", "message": "fresh"}])
        after = int(time.time())
    finally:
        monkeypatch.delenv("LOG_RETENTION_DAYS")
        config.settings.cache_clear()
    table = boto3.resource("dynamodb").Table(settings().main_table)
    items = table.query(KeyConditionExpression="PK = :pk",
                        ExpressionAttributeValues={":pk": store.partition(s["org"]["orgId"], s["iid"])})["Items"]
    assert len(items) == 1 and before + 3 * 86400 <= int(items[0]["ttl"]) <= after + 3 * 86400
    # Items past their ttl that DynamoDB has not deleted yet are never returned, and a page
    # that passes them still fills up.
    fresh = read(http, s["agent"], s["iid"]).json[0]
    expired = [store.LogEntry(org_id=s["org"]["orgId"], instance_id=s["iid"], id=f"01M80000000000000000000{i:03d}",
                              timestamp=fresh["timestamp"], level="INFO", message=f"old{i}",
                              expires_at=int(time.time()) - 60) for i in range(5)]
    expired[0] = expired[0].model_copy(update={"entry_id": "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"})  # newest of all
    from chalicelib.core.context import Ctx

    seeding = Ctx.system(s["org"]["orgId"]).bulk()
    for i, entry in enumerate(expired):
        seeding.put(f"entry:{i}", store.entry_put(entry))
    seeding.commit()
    assert [e["message"] for e in read(http, s["agent"], s["iid"], limit=1).json] == ["fresh"]
    assert [e["message"] for e in read(http, s["agent"], s["iid"], level="info").json] == ["fresh"]
    assert [e["message"] for e in read(http, s["agent"], s["iid"], since="2000-01-01T00:00:00Z").json] == ["fresh"]


def test_a_retried_push_with_the_same_idempotency_key_stores_entries_once(http, setup, monkeypatch):
    from chalicelib.aws import dynamo
    from chalicelib.core.config import settings

    s = setup
    entries = [{"timestamp": ts(i), "level": "INFO", "message": f"r{i}"} for i in range(30)]
    real = dynamo.batch_put

    def outbox_down(table, items):
        if table == settings().outbox_table:
            raise dynamo.TransactionConflict("throttled")
        return real(table, items)

    monkeypatch.setattr(dynamo, "batch_put", outbox_down)
    failed = push(http, s["agent"], s["iid"], entries, headers={"Idempotency-Key": "retry-1"})
    assert failed.status == 503 and failed.json["error"]["code"] == "UNAVAILABLE"
    assert len(read(http, s["agent"], s["iid"]).json) == 30  # entries stored, event not written
    monkeypatch.setattr(dynamo, "batch_put", real)
    again = push(http, s["agent"], s["iid"], entries, headers={"Idempotency-Key": "retry-1"})
    assert again.status == 202 and again.json == {"accepted": 30}
    assert [e["message"] for e in read(http, s["agent"], s["iid"]).json] == [f"r{i}" for i in range(30)]
    replay = push(http, s["agent"], s["iid"], entries, headers={"Idempotency-Key": "retry-1"})
    assert replay.status == 202 and replay.headers.get("Idempotent-Replayed") == "true"
    assert len(read(http, s["agent"], s["iid"]).json) == 30
