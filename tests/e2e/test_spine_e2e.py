"""The platform spine end to end: the running local stack over real HTTP and a real WebSocket client."""
from __future__ import annotations

import time

import pytest
from websockets.exceptions import InvalidStatus

from tests.e2e.client import call, events_until, next_event, ws_connect

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_orgs(devstack):
    root = devstack.admin_api_key
    a = call(devstack.url, "POST", "/orgs", root, {"name": "org A"}).json
    b = call(devstack.url, "POST", "/orgs", root, {"name": "org B"}).json
    return a, b


def queue_job(devstack, org) -> str:
    """A write in `org` that emits an event (job:queued) through the outbox."""
    r = call(devstack.url, "POST", "/jobs", org["adminKey"], {"pool": "e2e", "type": "noop", "payload": {}})
    assert r.status == 201, r.json
    return r.json["jobId"]


def connected(devstack, key):
    conn = ws_connect(devstack.url, key)
    first = next_event(conn)
    assert first["event"] == "system:connected", first
    return conn


def test_health_answers_over_http(devstack):
    r = call(devstack.url, "GET", "/health")
    assert r.status == 200 and r.json["status"] == "ok"


def test_upgrade_is_refused_without_a_valid_token(devstack):
    for token in (None, "", "not-a-key", "cpk.01ARZ3NDEKTSV4RRFFQ69G5FAV.forged"):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(devstack.url, token)
        assert refused.value.response.status_code == 401, token


def test_system_connected_is_the_first_message(devstack, two_orgs):
    org, _ = two_orgs
    with ws_connect(devstack.url, org["adminKey"]) as conn:
        first = next_event(conn)
        assert first["event"] == "system:connected"
        assert first["data"]["connectionId"] and first["data"]["timestamp"].endswith("Z")


def test_ping_pong_after_invalid_json_and_unknown_actions(devstack, two_orgs):
    org, _ = two_orgs
    with connected(devstack, org["adminKey"]) as conn:
        conn.send("{not json")
        conn.send('{"action": "teleport"}')
        conn.send("[1, 2, 3]")
        conn.send('{"action": "ping"}')
        pong = next_event(conn)
        assert pong["event"] == "system:pong" and pong["data"]["timestamp"].endswith("Z")


def test_an_event_reaches_every_connection_of_its_org_and_none_of_another(devstack, two_orgs):
    org_a, org_b = two_orgs
    a_conns = [connected(devstack, org_a["adminKey"]) for _ in range(3)]
    b_conns = [connected(devstack, org_b["adminKey"]) for _ in range(2)]
    try:
        job_id = queue_job(devstack, org_a)
        for conn in a_conns:
            seen = events_until(conn, lambda m: m["event"] == "job:queued" and m["data"]["jobId"] == job_id)
            assert all(m["event"] == "job:queued" for m in seen)
        # The same fan-out that reached A has run; B's next message must be the pong it asks for.
        for conn in b_conns:
            conn.send('{"action": "ping"}')
            assert next_event(conn)["event"] == "system:pong"
    finally:
        for conn in a_conns + b_conns:
            conn.close()


def test_a_dead_connection_is_removed_on_the_first_failed_send(devstack, two_orgs):
    org, _ = two_orgs
    table = devstack.environment["MAIN_TABLE"]
    ddb = devstack.aws("dynamodb")
    # A connection whose $disconnect was lost: recorded, but gone from the gateway (410 on send).
    ghost = {"PK": {"S": "CONN#ghost-connection"}, "SK": {"S": "CONN"}, "type": {"S": "connection"},
             "connectionId": {"S": "ghost-connection"}, "orgId": {"S": org["orgId"]},
             "endpoint": {"S": devstack.url}, "keyId": {"S": "k"}, "connectedAt": {"S": "2026-01-01T00:00:00.000Z"},
             "ttl": {"N": str(int(time.time()) + 3600)},
             "GSI1PK": {"S": f"ORG#{org['orgId']}#CONNS"}, "GSI1SK": {"S": "ghost-connection"}}
    ddb.put_item(TableName=table, Item=ghost)
    with connected(devstack, org["adminKey"]) as live:
        job_id = queue_job(devstack, org)
        events_until(live, lambda m: m["event"] == "job:queued" and m["data"]["jobId"] == job_id)
        deadline = time.monotonic() + 10
        while ddb.get_item(TableName=table, Key={"PK": ghost["PK"], "SK": ghost["SK"]}).get("Item"):
            assert time.monotonic() < deadline, "the dead connection was not removed"
            time.sleep(0.1)
        # the live one is still there and still served
        live.send('{"action": "ping"}')
        assert events_until(live, lambda m: m["event"] == "system:pong")


def test_closing_a_connection_runs_disconnect(devstack, two_orgs):
    org, _ = two_orgs
    table = devstack.environment["MAIN_TABLE"]
    ddb = devstack.aws("dynamodb")
    conn = connected(devstack, org["adminKey"])
    conn.send('{"action": "ping"}')
    next_event(conn)
    items = ddb.query(TableName=table, IndexName="GSI1", KeyConditionExpression="GSI1PK = :p",
                      ExpressionAttributeValues={":p": {"S": f"ORG#{org['orgId']}#CONNS"}})["Items"]
    assert len(items) == 1
    conn.close()
    deadline = time.monotonic() + 10
    while ddb.query(TableName=table, IndexName="GSI1", KeyConditionExpression="GSI1PK = :p",
                    ExpressionAttributeValues={":p": {"S": f"ORG#{org['orgId']}#CONNS"}})["Items"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
