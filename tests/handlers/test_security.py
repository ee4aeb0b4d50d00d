"""Issue 9 through the Chalice test client on moto: idempotency without secrets and in 3 calls,
equal-time key checks, bounded denial audit, strict JSON, DeleteConnection."""
from __future__ import annotations

import json
import threading

import pytest
from botocore.stub import Stubber

from chalicelib.aws import clients, dynamo
from chalicelib.core import auth
from chalicelib.core.config import settings


def count_calls():
    calls: list[str] = []

    def counter(model, **_):
        calls.append(model.name)

    return calls, counter


def test_an_idempotent_first_call_costs_two_aws_calls_and_a_replay_at_most_two(http, org):
    # The key's first use in a minute records lastUsedAt (one UpdateItem, then none for a minute): done here.
    assert http.get("/keys", org["adminKey"]).status == 200
    calls, counter = count_calls()
    for client in (clients.client("dynamodb"),):
        client.meta.events.register("before-call.*.*", counter)
    try:
        body = {"name": "counted", "scope": "operator"}
        first = http.post("/keys", org["adminKey"], body, headers={"Idempotency-Key": "count-1"})
        first_calls = list(calls)
        calls.clear()
        replay = http.post("/keys", org["adminKey"], body, headers={"Idempotency-Key": "count-1"})
        replay_calls = list(calls)
    finally:
        clients.client("dynamodb").meta.events.unregister("before-call.*.*", counter)
    assert first.status == replay.status == 201
    # the key's read and one transaction holding the key item, its audit event and the record
    assert first_calls == ["GetItem", "TransactWriteItems"], first_calls
    # the key's read and the same transaction, whose failed record condition hands back the record
    assert replay_calls == ["GetItem", "TransactWriteItems"], replay_calls
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json["keyId"] == first.json["keyId"]


def test_the_idempotency_record_holds_no_secret_and_is_scoped_to_the_key(http, org):
    r = http.post("/keys", org["adminKey"], {"name": "stored", "scope": "admin"}, headers={"Idempotency-Key": "sec"})
    assert r.status == 201
    secret = r.json["apiKey"].rsplit(".", 1)[1]
    items = clients.client("dynamodb").scan(TableName=settings().idempotency_table)["Items"]
    assert items and secret not in json.dumps(items)
    # Another admin of the same org with the same Idempotency-Key: its own call, never a replay of the first.
    other = http.post("/keys", r.json["apiKey"], {"name": "stored", "scope": "admin"},
                      headers={"Idempotency-Key": "sec"})
    assert other.status == 201 and "Idempotent-Replayed" not in other.headers and "apiKey" in other.json
    # The first key revoked: its replay is 401 like any call.
    assert http.delete(f"/keys/{r.json['keyId']}", org["adminKey"]).status == 204
    again = http.post("/keys", r.json["apiKey"], {"name": "stored", "scope": "admin"},
                      headers={"Idempotency-Key": "sec"})
    assert again.status == 401


def test_twenty_concurrent_repeats_create_exactly_once(http, org, atomic_aws):
    body = {"name": "raced", "scope": "operator"}
    results = []

    def repeat():
        results.append(http.post("/keys", org["adminKey"], body, headers={"Idempotency-Key": "race-1"}))

    threads = [threading.Thread(target=repeat) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.status == 201]
    assert len({r.json["keyId"] for r in ok}) == 1
    assert sum("apiKey" in r.json for r in ok) <= 1  # the secret went to one caller at most
    assert all(r.status in (201, 409, 503) for r in results), [r.status for r in results]
    names = [k["name"] for k in http.get("/keys?limit=100", org["adminKey"]).json["items"]]
    assert names.count("raced") == 1


def test_a_handler_that_cannot_defer_its_writes_still_runs_once(http, org):
    # Registration with pools: one transaction; deactivation: a read, a write, then socket look-ups.
    agent = http.post("/agents", org["adminKey"], {"name": "x", "pools": ["p"]}, headers={"Idempotency-Key": "a"})
    assert agent.status == 201
    first = http.post(f"/agents/{agent.json['agentId']}/deactivate", org["adminKey"],
                      headers={"Idempotency-Key": "d"})
    again = http.post(f"/agents/{agent.json['agentId']}/deactivate", org["adminKey"],
                      headers={"Idempotency-Key": "d"})
    assert first.status == again.status == 200 and again.headers.get("Idempotent-Replayed") == "true"


def test_unknown_key_ids_are_checked_against_a_dummy_hash(monkeypatch, aws):
    compared = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    for presented in ("cpk.01ARZ3NDEKTSV4RRFFQ69G5FAV.unknown", "not-even-a-cpk-key"):
        with pytest.raises(auth.KeyDenied):
            auth.authenticate(presented)
    assert compared == [auth.DUMMY_HASH, auth.DUMMY_HASH]  # the same HMAC and compare as a known keyId


def test_a_known_key_id_with_a_wrong_secret_does_the_same_work(monkeypatch, http, org):
    compared = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: compared.append(a) or real(a, b))
    key_id = org["adminKey"].split(".")[1]
    with pytest.raises(auth.KeyDenied) as denied:
        auth.authenticate(f"cpk.{key_id}.wrong")
    assert denied.value.reason == "unknown API key"  # indistinguishable from an unknown keyId
    assert len(compared) == 1 and compared[0] != auth.DUMMY_HASH


def test_denials_without_an_org_are_counted_per_source_and_minute(http, org):
    table = settings().main_table
    for _ in range(25):
        assert http.get("/keys", "cpk.01ARZ3NDEKTSV4RRFFQ69G5FAV.flood").status == 401
    counts = [i for i in dynamo.query_all(table, "PK = :pk", {":pk": _minute_pk()})] or \
        [i for i in dynamo.query_all(table, "PK = :pk", {":pk": _minute_pk(-60)})]
    assert len(counts) == 1 and counts[0]["count"] >= 25  # one item, bumped with ADD
    assert counts[0]["lastReason"] == "unknown API key"
    no_org_events = dynamo.query(table, "PK = :pk", {":pk": "ORG#-#AUDIT"}).items
    assert no_org_events == []
    # An organization's denials stay one audit event each.
    operator = http.post("/keys", org["adminKey"], {"name": "op", "scope": "operator"}).json["apiKey"]
    for _ in range(3):
        assert http.get("/keys", operator).status == 403
    events = dynamo.query(table, "PK = :pk", {":pk": f"ORG#{org['orgId']}#AUDIT"}).items
    assert len([e for e in events if e["action"] == "denied"]) >= 3


def _minute_pk(offset: float = 0) -> str:
    from chalicelib.core import clock

    return f"DENIALS#{clock.iso(clock.now() + offset)[:16]}"


def test_an_audit_write_that_fails_is_logged_never_silent(monkeypatch, http, caplog):
    from chalicelib.core import audit

    def broken(*_, **__):
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(audit.dynamo, "update", broken)
    with caplog.at_level("ERROR"):
        assert http.get("/keys", "cpk.01ARZ3NDEKTSV4RRFFQ69G5FAV.x").status == 401
    assert any("AUDIT WRITE FAILED" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("raw, field", [
    (b'{"name": "x", "scope": "operator", "n": 1e400}', "n"),
    (b'{"name": "\\ud800", "scope": "operator"}', "name"),
    (b'{"name": "x", "scope": "operator", "n": ' + b"1" * 39 + b"}", "n"),
    (b'{"name": "x", "scope": "operator", "n": 1.5e200}', "n"),
    (b'{"name": "x", "scope": "operator", "n": -1' + b"0" * 400 + b"}", "n"),  # one significant digit
    (b'{"name": "x", "scope": "operator", "n": 1' + b"0" * 126 + b"}", "n"),  # 1E126 as an integer
    (b'{"name": "x", "scope": "operator", "deep": {"a": [1, -Infinity]}}', "deep.a.1"),
])
def test_json_that_cannot_be_stored_or_read_back_is_400_naming_the_field(http, org, raw, field):
    r = http.post("/keys", org["adminKey"], raw_body=raw)
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == field, r.json


def test_long_trace_ids_are_replaced_and_long_ids_are_400(http, org):
    r = http.post("/keys", org["adminKey"], {"name": "t", "scope": "operator"}, headers={"X-Trace-Id": "x" * 5000})
    assert r.status == 201 and len(r.headers["X-Trace-Id"]) <= 128
    ok = http.get("/keys", org["adminKey"], headers={"X-Trace-Id": "my-trace_1.2:3"})
    assert ok.headers["X-Trace-Id"] == "my-trace_1.2:3"
    r = http.delete("/keys/" + "k" * 5000, org["adminKey"])
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "keyId"


def test_delete_connection_goes_through_the_management_api():
    from chalicelib.aws import websocket

    api = clients.client("apigatewaymanagementapi", endpoint_url="https://abc.execute-api.us-east-1.amazonaws.com/prod")
    with Stubber(api) as stub:
        stub.add_response("delete_connection", {}, {"ConnectionId": "c-1"})
        stub.add_client_error("delete_connection", service_error_code="GoneException", http_status_code=410,
                              expected_params={"ConnectionId": "c-2"})
        assert websocket.close("https://abc.execute-api.us-east-1.amazonaws.com/prod", "c-1") is True
        assert websocket.close("https://abc.execute-api.us-east-1.amazonaws.com/prod", "c-2") is False
        stub.assert_no_pending_responses()


def test_revoking_a_key_deletes_its_connections(app_module, http, org, monkeypatch):
    from chalicelib.fanout import fanout

    closed = []
    monkeypatch.setattr(fanout.adapters, "close", lambda endpoint, cid: closed.append(cid) or True)
    key = http.post("/keys", org["adminKey"], {"name": "ws", "scope": "operator"}).json
    for cid, token in (("mine-1", key["apiKey"]), ("mine-2", key["apiKey"]), ("other", org["adminKey"])):
        event = {"requestContext": {"connectionId": cid, "domainName": "abc.execute-api.us-east-1.amazonaws.com",
                                    "stage": "prod", "routeKey": "$connect", "eventType": "CONNECT",
                                    "apiId": "abc", "requestId": "r"},
                 "queryStringParameters": {"token": token}}
        from chalicelib.fanout import handlers

        assert handlers.connect(event) == 200
    assert http.delete(f"/keys/{key['keyId']}", org["adminKey"]).status == 204
    assert sorted(closed) == ["mine-1", "mine-2"]
