"""Sessions through the API on moto: every (from, to) pair, merges, lists with totals and pages, bad input."""
from __future__ import annotations

from tests.conftest import key_of

import itertools

import pytest

STATES = ["pending", "active", "completed", "failed", "expired"]
# How to bring a new session to each state through the API.
PATH_TO = {"pending": [], "active": ["active"], "completed": ["active", "completed"],
           "failed": ["active", "failed"], "expired": ["expired"]}
# The contract's machine: pending -> active -> completed | failed | expired, pending -> expired.
MOVES = {("pending", "active"), ("pending", "expired"), ("active", "completed"), ("active", "failed"),
         ("active", "expired")}
NOOPS = {("pending", "pending"), ("active", "active")}


@pytest.fixture
def agent(http, org):
    return key_of(http, org, "agent", "agent-1")


def new_session(http, key, **body):
    r = http.post("/sessions", key, {"agentRole": "planner", **body})
    assert r.status == 201, r.json
    return r.json


def session_in(http, key, state: str) -> dict:
    s = new_session(http, key)
    for step in PATH_TO[state]:
        r = http.put(f"/sessions/{s['sessionId']}", key, {"status": step})
        assert r.status == 200, r.json
        s = r.json
    assert s["status"] == state
    return s


def audit_of(http, ops, entity_id):
    r = http.get(f"/audit?entityType=session&entityId={entity_id}", ops)
    assert r.status == 200, r.json
    return r.json["items"]


def test_create_get_shape(http, org, agent):
    s = new_session(http, agent, task_id="T1", metadata={"a": 1, "f": 0.5, "n": {"x": None}, "e": ""})
    assert s["status"] == "pending" and s["agentRole"] == "planner" and s["taskId"] == "T1"
    assert s["metadata"] == {"a": 1, "f": 0.5, "n": {"x": None}, "e": ""}
    assert len(s["sessionId"]) == 26 and s["createdAt"].endswith("Z") and s["updatedAt"] == s["createdAt"]
    got = http.get(f"/sessions/{s['sessionId']}", agent)
    assert got.status == 200 and got.json == s
    snake = http.post("/sessions", agent, {"agent_role": "coder", "task_id": "T2"})
    assert snake.status == 201 and snake.json["agentRole"] == "coder" and snake.json["taskId"] == "T2"


@pytest.mark.parametrize("start,to", list(itertools.product(STATES, STATES)))
def test_every_transition(http, org, agent, start, to):
    ops = key_of(http, org, "operator")
    s = session_in(http, agent, start)
    before = len(audit_of(http, ops, s["sessionId"]))
    r = http.put(f"/sessions/{s['sessionId']}", agent, {"status": to})
    after = http.get(f"/sessions/{s['sessionId']}", agent).json
    events = audit_of(http, ops, s["sessionId"])
    if (start, to) in MOVES:
        assert r.status == 200, r.json
        assert r.json["status"] == to and after["status"] == to
        assert len(events) == before + 1
        assert events[0]["details"]["status"] == {"from": start, "to": to}
    elif (start, to) in NOOPS:
        assert r.status == 200 and r.json == s == after  # nothing written, not even updatedAt
        assert len(events) == before
    else:
        assert r.status == 409 and r.json["error"]["code"] == "INVALID_TRANSITION", r.json
        assert after == s and len(events) == before


def test_metadata_merges_and_null_removes(http, org, agent):
    s = new_session(http, agent, metadata={"a": 1, "b": 2})
    r = http.put(f"/sessions/{s['sessionId']}", agent, {"metadata": {"b": None, "c": [1, 2]}, "task_id": "T9"})
    assert r.status == 200, r.json
    assert r.json["metadata"] == {"a": 1, "c": [1, 2]} and r.json["taskId"] == "T9"
    assert http.get(f"/sessions/{s['sessionId']}", agent).json == r.json


def test_terminal_session_keeps_its_metadata(http, org, agent):
    s = session_in(http, agent, "completed")
    r = http.put(f"/sessions/{s['sessionId']}", agent, {"metadata": {"late": True}})
    assert r.status == 409 and r.json["error"]["code"] == "INVALID_TRANSITION"


def test_list_pages_totals_and_next_token(http, org, agent):
    made = [new_session(http, agent)["sessionId"] for _ in range(7)]
    for sid in made[:3]:
        assert http.put(f"/sessions/{sid}", agent, {"status": "active"}).status == 200
    newest_first = list(reversed(made))
    r = http.get("/sessions?pageSize=3", agent)
    assert r.status == 200, r.json
    assert r.json["total"] == 7 and r.json["page"] == 1 and r.json["pageSize"] == 3
    assert [s["sessionId"] for s in r.json["sessions"]] == newest_first[:3]
    page3 = http.get("/sessions?page=3&page_size=3", agent).json
    assert [s["sessionId"] for s in page3["sessions"]] == newest_first[6:] and page3["nextToken"] is None
    # deep paging by token gives the same pages
    seen, token, pages = [], None, []
    while True:
        r = http.get("/sessions?pageSize=3" + (f"&nextToken={token}" if token else ""), agent)
        assert r.status == 200, r.json
        seen += [s["sessionId"] for s in r.json["sessions"]]
        pages.append(r.json["page"])
        token = r.json["nextToken"]
        if not token:
            break
    assert seen == newest_first and pages == [1, 2, 3]
    active = http.get("/sessions?status=active", agent).json
    assert active["total"] == 3 and [s["sessionId"] for s in active["sessions"]] == list(reversed(made[:3]))
    assert http.get("/sessions/active", agent).json == active
    pending = http.get("/sessions?status=pending&pageSize=100", agent).json
    assert pending["total"] == 4 and len(pending["sessions"]) == 4
    assert http.get("/sessions?page=9", agent).json["sessions"] == []


def test_events_and_audit_for_create_and_update(http, org, agent, outbox):
    outbox.drain()
    s = new_session(http, agent)
    http.put(f"/sessions/{s['sessionId']}", agent, {"status": "active", "metadata": {"k": "v"}})
    events = [e for e in outbox.drain() if e["event"] == "session:updated"]
    assert [e["data"]["status"] for e in events] == ["pending", "active"]
    assert all(e["orgId"] == org["orgId"] for e in events)
    ops = key_of(http, org, "operator")
    trail = audit_of(http, ops, s["sessionId"])
    assert [e["action"] for e in trail] == ["updated", "created"]  # newest first
    assert trail[0]["details"]["metadataKeys"] == ["k"] and trail[0]["actor"] == "agent:agent-1"


@pytest.mark.parametrize("method,path,body,field", [
    ("GET", "/sessions?status=paused", None, "status"),
    ("GET", "/sessions?pageSize=0", None, "pageSize"),
    ("GET", "/sessions?pageSize=101", None, "pageSize"),
    ("GET", "/sessions?page=0", None, "page"),
    ("GET", "/sessions?nextToken=garbage", None, "nextToken"),
    ("POST", "/sessions", {}, "agentRole"),
    ("POST", "/sessions", {"agentRole": "x", "metadata": [1]}, "metadata"),
    ("POST", "/sessions", {"agentRole": "x", "extra": 1}, "extra"),
    ("PUT", "/sessions/{id}", {"status": "paused"}, "status"),
    ("PUT", "/sessions/{id}", {"metadata": {"": 1}}, "metadata"),
])
def test_bad_input_is_400_naming_the_field(http, org, agent, method, path, body, field):
    s = new_session(http, agent)
    r = http.call(method, path.replace("{id}", s["sessionId"]), agent, body)
    assert r.status == 400, r.json
    assert r.json["error"]["code"] == "VALIDATION_ERROR"
    assert field in {d["field"] for d in r.json["error"]["details"]}, r.json


def test_other_org_ids_are_404(http, org, agent, root):
    s = new_session(http, agent)
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    for method, body in (("GET", None), ("PUT", {"status": "active"})):
        r = http.call(method, f"/sessions/{s['sessionId']}", other["adminKey"], body)
        assert r.status == 404 and r.json["error"]["code"] == "NOT_FOUND"
    assert http.get("/sessions/not-an-id", agent).status == 404
    assert http.get("/sessions", other["adminKey"]).json["total"] == 0
