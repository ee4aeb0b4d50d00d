"""Commands to agents on moto through the Chalice test client: issue, list, ack, replay, expiry, events."""
from __future__ import annotations

import pytest

from chalicelib.core import clock
from tests.handlers.test_instances import operator_key, register_agent


@pytest.fixture
def setup(http, org):
    ops = operator_key(http, org)
    a, b = register_agent(http, org, "edge-a"), register_agent(http, org, "edge-b")
    return {"ops": ops, "a": a, "b": b}


def issue(http, key, agent_id, **body):
    return http.post(f"/agents/{agent_id}/commands", key, {"type": "ping", **body})


def test_issue_list_ack_and_events(http, setup, outbox):
    a = setup["a"]
    outbox.drain()
    r = issue(http, setup["ops"], a["agentId"], payload={"x": 1})
    assert r.status == 201 and r.json["status"] == "pending" and r.json["ttlSeconds"] == 3600
    cid = r.json["commandId"]
    events = outbox.drain()
    issued = [e for e in events if e["event"] == "command:issued"]
    assert len(issued) == 1 and issued[0]["agentId"] == a["agentId"]  # to that agent's sockets
    assert issued[0]["data"]["commandId"] == cid and issued[0]["data"]["payload"] == {"x": 1}

    pending = http.get(f"/agents/{a['agentId']}/commands?status=pending", a["apiKey"]).json["items"]
    assert [c["commandId"] for c in pending] == [cid]
    ack = http.post(f"/commands/{cid}/ack", a["apiKey"], {"status": "acked", "result": {"pong": True}})
    assert ack.status == 200 and ack.json["status"] == "acked" and ack.json["result"] == {"pong": True}
    acked = [e for e in outbox.drain() if e["event"] == "command:acked"]
    assert len(acked) == 1 and acked[0]["agentId"] is None  # the organization's sockets
    assert http.get(f"/agents/{a['agentId']}/commands?status=pending", a["apiKey"]).json["items"] == []
    assert [c["commandId"] for c in
            http.get(f"/agents/{a['agentId']}/commands?status=acked", setup["ops"]).json["items"]] == [cid]

    # a second ack (even a different outcome) answers the first, and emits nothing
    again = http.post(f"/commands/{cid}/ack", a["apiKey"], {"status": "failed", "result": "late"})
    assert again.status == 200 and again.json == ack.json
    assert [e for e in outbox.drain() if e["event"] == "command:acked"] == []


def test_who_may_do_what(http, setup):
    a, b = setup["a"], setup["b"]
    cid = issue(http, setup["ops"], a["agentId"]).json["commandId"]
    assert issue(http, a["apiKey"], a["agentId"]).status == 403  # agents do not issue
    assert http.get(f"/agents/{a['agentId']}/commands", b["apiKey"]).status == 403
    assert http.post(f"/commands/{cid}/ack", b["apiKey"], {"status": "acked"}).status == 404  # not revealed
    assert http.post(f"/commands/{cid}/ack", setup["ops"], {"status": "acked"}).status == 403  # only that agent
    assert issue(http, setup["ops"], "01NOSUCHAGENT0000000000000").status == 404
    assert http.get(f"/commands/{cid}", a["apiKey"]).json["status"] == "pending"


def test_listing_the_commands_of_an_agent_outside_the_callers_org_is_404(http, org, setup, root):
    other = http.post("/orgs", root["adminApiKey"], {"name": "other org"}).json
    theirs = register_agent(http, other, "theirs")
    assert issue(http, other["adminKey"], theirs["agentId"]).status == 201  # it has a pending command
    for key in (setup["ops"], org["adminKey"]):
        r = http.get(f"/agents/{theirs['agentId']}/commands?status=pending", key)
        assert r.status == 404 and r.json["error"]["code"] == "NOT_FOUND", r.json  # never 200 []
    assert http.get("/agents/01NOSUCHAGENT0000000000000/commands", setup["ops"]).status == 404
    # another org's agent key asking for this org's agent: 403 before any look-up (tells nothing either way)
    assert http.get(f"/agents/{setup['a']['agentId']}/commands", theirs["apiKey"]).status == 403
    # an agent of the caller's org with no commands, and a deactivated one: still listed (200)
    assert http.get(f"/agents/{setup['b']['agentId']}/commands", setup["ops"]).json["items"] == []
    cid = issue(http, setup["ops"], setup["a"]["agentId"]).json["commandId"]
    assert http.post(f"/agents/{setup['a']['agentId']}/deactivate", setup["ops"]).status == 200
    listed = http.get(f"/agents/{setup['a']['agentId']}/commands", setup["ops"])
    assert listed.status == 200 and [c["commandId"] for c in listed.json["items"]] == [cid]
    assert http.get(f"/agents/{theirs['agentId']}/commands", other["adminKey"]).status == 200  # theirs, to them


@pytest.mark.parametrize("body, field", [
    ({"type": "bad type"}, "type"), ({"type": "x", "ttlSeconds": 0}, "ttlSeconds"),
    ({"type": "x", "payload": [1]}, "payload"), ({"type": "x", "extra": 1}, "extra"),
])
def test_bad_commands_are_400(http, setup, body, field):
    r = http.post(f"/agents/{setup['a']['agentId']}/commands", setup["ops"], body)
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == field


def test_bad_ack_is_400(http, setup):
    cid = issue(http, setup["ops"], setup["a"]["agentId"]).json["commandId"]
    r = http.post(f"/commands/{cid}/ack", setup["a"]["apiKey"], {"status": "done"})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "status"


def test_a_command_not_acked_within_its_ttl_expires(http, setup, app_module, monkeypatch):
    a = setup["a"]
    cid = issue(http, setup["ops"], a["agentId"], ttlSeconds=30).json["commandId"]
    kept = issue(http, setup["ops"], a["agentId"], ttlSeconds=3600).json["commandId"]
    real_now = clock.now()
    monkeypatch.setattr(clock, "now", lambda: real_now + 31)
    # before the sweep: already expired to readers and acks
    assert http.get(f"/commands/{cid}", a["apiKey"]).json["status"] == "expired"
    pending = http.get(f"/agents/{a['agentId']}/commands?status=pending", a["apiKey"]).json["items"]
    assert [c["commandId"] for c in pending] == [kept]
    late = http.post(f"/commands/{cid}/ack", a["apiKey"], {"status": "acked"})
    assert late.status == 409 and late.json["error"]["code"] == "INVALID_TRANSITION"
    # the schedule writes it down
    app_module.commands_expire({"version": "0", "account": "123456789012", "region": "us-east-1", "detail": {},
                                "detail-type": "Scheduled Event", "source": "aws.events", "time": clock.iso(),
                                "id": "1", "resources": []}, None)
    expired = http.get(f"/agents/{a['agentId']}/commands?status=expired", setup["ops"]).json["items"]
    assert [c["commandId"] for c in expired] == [cid]
    assert http.get(f"/commands/{kept}", a["apiKey"]).json["status"] == "pending"
    assert http.post(f"/commands/{kept}/ack", a["apiKey"], {"status": "failed", "result": {"e": 1}}).json["status"] == "failed"


def test_priority_is_accepted_and_the_pending_list_is_highest_first_then_oldest(http, setup, outbox):
    a, ops = setup["a"], setup["ops"]
    issued = []
    for priority in ("low", None, "high", "normal", "high", "low"):
        body = {"priority": priority} if priority else {}
        r = issue(http, ops, a["agentId"], **body)
        assert r.status == 201 and r.json["priority"] == (priority or "normal"), r.json
        issued.append((r.json["priority"], r.json["commandId"]))
    events = [e for e in outbox.drain() if e["event"] == "command:issued"]
    assert [e["data"]["priority"] for e in events][-6:] == [p for p, _ in issued]  # the event carries it

    rank = {"high": 0, "normal": 1, "low": 2}
    expected = [cid for _, cid in sorted(issued, key=lambda pc: (rank[pc[0]], pc[1]))]
    listed = http.get(f"/agents/{a['agentId']}/commands?status=pending", a["apiKey"]).json["items"]
    assert [c["commandId"] for c in listed] == expected
    assert [c["priority"] for c in listed] == ["high", "high", "normal", "normal", "low", "low"]

    # page by page, the same order (the sort key is the Query's order, not a sort in memory)
    paged, token = [], None
    while True:
        url = f"/agents/{a['agentId']}/commands?status=pending&limit=4" + (f"&nextToken={token}" if token else "")
        page = http.get(url, a["apiKey"]).json
        paged += [c["commandId"] for c in page["items"]]
        token = page["nextToken"]
        if not token:
            break
    assert paged == expected

    # acked commands leave the pending list; the acked list is oldest first whatever the priority
    for cid in (expected[0], expected[-1]):
        assert http.post(f"/commands/{cid}/ack", a["apiKey"], {"status": "acked"}).status == 200
    pending = http.get(f"/agents/{a['agentId']}/commands?status=pending", a["apiKey"]).json["items"]
    assert [c["commandId"] for c in pending] == expected[1:-1]
    acked = http.get(f"/agents/{a['agentId']}/commands?status=acked", a["apiKey"]).json["items"]
    assert [c["commandId"] for c in acked] == sorted([expected[0], expected[-1]])
    assert http.get(f"/commands/{expected[0]}", ops).json["priority"] == "high"


def test_an_unknown_priority_is_400(http, setup):
    r = issue(http, setup["ops"], setup["a"]["agentId"], priority="urgent")
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "priority"
