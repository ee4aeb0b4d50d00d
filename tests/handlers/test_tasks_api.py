"""Tasks, fetch_status, approvals and the audit trail through the API on moto."""
from __future__ import annotations

from tests.conftest import key_of

import pytest


@pytest.fixture
def keys(http, org):
    return {"agent": key_of(http, org, "agent", "a1"), "ops": key_of(http, org, "operator")}


def new_task(http, key, idem: str, **extra):
    r = http.post("/tasks", key, {"idempotencyKey": idem, "toRole": "coder", "type": "build", **extra})
    assert r.status == 201, r.json
    return r.json


def test_create_repeat_and_reuse(http, org, keys):
    a = keys["agent"]
    t = new_task(http, a, "k1", payload={"x": 1.5, "n": None}, from_role="planner")
    assert t["status"] == "pending" and t["fromRole"] == "planner" and t["payload"] == {"x": 1.5, "n": None}
    assert len(t["traceId"]) == 26 and t["requiresApproval"] is False
    again = http.post("/tasks", a, {"idempotency_key": "k1", "to_role": "coder", "type": "build",
                                    "payload": {"x": 1.5, "n": None}, "from_role": "planner"})
    assert again.status == 200 and again.json == t
    other = http.post("/tasks", a, {"idempotencyKey": "k1", "toRole": "coder", "type": "deploy"})
    assert other.status == 409 and other.json["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert http.get(f"/tasks/{t['taskId']}", a).json == t


def test_idempotency_window_passes(http, org, keys, monkeypatch):
    from chalicelib.core import clock

    a = keys["agent"]
    first = new_task(http, a, "k-window")
    real = clock.now
    monkeypatch.setattr(clock, "now", lambda: real() + 24 * 3600 + 1)  # IDEMPOTENCY_TTL_SECONDS later
    second = http.post("/tasks", a, {"idempotencyKey": "k-window", "toRole": "coder", "type": "build"})
    assert second.status == 201 and second.json["taskId"] != first["taskId"]
    status = http.get("/status?toRole=coder", a).json["items"]
    assert [t["taskId"] for t in status if t["idempotencyKey"] == "k-window"] == [second.json["taskId"]]


def test_trace_id_carried_to_audit(http, org, keys):
    t = new_task(http, keys["agent"], "traced", traceId="trace-123")
    assert t["traceId"] == "trace-123"
    http.put(f"/tasks/{t['taskId']}", keys["agent"], {"status": "in_progress"})
    trail = http.get("/audit?traceId=trace-123", keys["ops"]).json["items"]
    assert [(e["entityType"], e["action"]) for e in trail] == [("task", "updated"), ("task", "created")]
    assert all(e["traceId"] == "trace-123" for e in trail)


@pytest.mark.parametrize("start,to,answer", [
    ("pending", "in_progress", 200), ("pending", "completed", 200), ("pending", "failed", 200),
    ("pending", "pending", 200), ("pending", "rejected", 409), ("pending", "awaiting_approval", 409),
    ("in_progress", "completed", 200), ("in_progress", "failed", 200), ("in_progress", "in_progress", 200),
    ("in_progress", "pending", 409),
    ("awaiting_approval", "pending", 409), ("awaiting_approval", "in_progress", 409),
    ("awaiting_approval", "awaiting_approval", 200),
    ("completed", "completed", 409), ("completed", "failed", 409), ("failed", "in_progress", 409),
])
def test_task_transitions(http, org, keys, start, to, answer):
    a = keys["agent"]
    t = new_task(http, a, f"tr-{start}-{to}", requiresApproval=start == "awaiting_approval")
    if start in ("in_progress", "completed", "failed"):
        if start != "in_progress":
            assert http.put(f"/tasks/{t['taskId']}", a, {"status": "in_progress"}).status == 200
        t = http.put(f"/tasks/{t['taskId']}", a, {"status": start}).json
    assert t["status"] == start
    r = http.put(f"/tasks/{t['taskId']}", a, {"status": to})
    assert r.status == answer, r.json
    if answer == 409:
        assert r.json["error"]["code"] == "INVALID_TRANSITION"
    assert http.get(f"/tasks/{t['taskId']}", a).json["status"] == (to if answer == 200 else start)


def test_result_and_lists(http, org, keys, outbox):
    a = keys["agent"]
    s = http.post("/sessions", a, {"agentRole": "planner"}).json
    t1 = new_task(http, a, "l1", sessionId=s["sessionId"])
    t2 = new_task(http, a, "l2", sessionId=s["sessionId"], toRole="tester")
    t3 = new_task(http, a, "l3")
    outbox.drain()
    done = http.put(f"/tasks/{t1['taskId']}", a, {"status": "completed", "result": {"ok": True}})
    assert done.status == 200 and done.json["result"] == {"ok": True}
    assert [e["data"]["status"] for e in outbox.drain() if e["event"] == "task:updated"] == ["completed"]
    ids = lambda q: [t["taskId"] for t in http.get(f"/tasks{q}", a).json["items"]]  # noqa: E731
    assert ids("") == [t3["taskId"], t2["taskId"], t1["taskId"]]
    assert ids(f"?sessionId={s['sessionId']}") == [t2["taskId"], t1["taskId"]]
    assert ids(f"?session_id={s['sessionId']}&toRole=tester") == [t2["taskId"]]
    assert ids("?status=completed") == [t1["taskId"]]
    assert ids("?toRole=coder&status=pending") == [t3["taskId"]]
    page = http.get("/tasks?limit=2", a).json
    rest = http.get(f"/tasks?limit=2&nextToken={page['nextToken']}", a).json
    assert [t["taskId"] for t in page["items"] + rest["items"]] == ids("") and rest["nextToken"] is None
    status = http.get(f"/status?sessionId={s['sessionId']}", a).json["items"]
    assert {t["idempotencyKey"]: t["status"] for t in status} == {"l1": "completed", "l2": "pending"}


def test_task_in_unknown_session_is_400(http, org, keys):
    r = http.post("/tasks", keys["agent"], {"idempotencyKey": "s", "toRole": "r", "type": "t",
                                            "sessionId": "01M8SX5K0ZGK2533ZC7BC8K2VX"})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "sessionId"


def test_approval_flow(http, org, keys, outbox):
    a, ops = keys["agent"], keys["ops"]
    t = new_task(http, a, "ap1")
    outbox.drain()
    r = http.post("/approvals", a, {"taskId": t["taskId"], "requestedBy": "planner", "reason": "prod deploy"})
    assert r.status == 201, r.json
    approval = r.json
    assert approval["status"] == "pending" and approval["task"]["status"] == "awaiting_approval"
    assert [e["event"] for e in outbox.drain()] == ["approval:requested", "task:updated"]
    again = http.post("/approvals", a, {"taskId": t["taskId"], "requestedBy": "planner"})
    assert again.status == 409
    pending = http.get("/approvals?status=pending", a).json["items"]
    assert [p["approvalId"] for p in pending] == [approval["approvalId"]]
    assert pending[0]["task"]["taskId"] == t["taskId"]
    d = http.post(f"/approvals/{approval['approvalId']}/decision", ops,
                  {"decision": "approved", "decided_by": "alice", "comment": "go"})
    assert d.status == 200, d.json
    assert d.json["status"] == "approved" and d.json["decidedBy"] == "alice" and d.json["task"]["status"] == "pending"
    assert [e["event"] for e in outbox.drain()] == ["approval:decided", "task:updated"]
    second = http.post(f"/approvals/{approval['approvalId']}/decision", ops, {"decision": "rejected",
                                                                               "decidedBy": "bob"})
    assert second.status == 409 and second.json["error"]["code"] == "CONFLICT"
    assert http.get("/approvals", a).json["items"] == []
    assert http.get("/approvals?status=approved", a).json["items"][0]["approvalId"] == approval["approvalId"]
    rejected = new_task(http, a, "ap2", requiresApproval=True)
    ap2 = http.get("/approvals", a).json["items"][0]
    assert ap2["taskId"] == rejected["taskId"]
    r = http.post(f"/approvals/{ap2['approvalId']}/decision", ops, {"decision": "rejected", "decidedBy": "bob"})
    assert r.status == 200 and r.json["task"]["status"] == "rejected"


def test_audit_reads(http, org, keys):
    a, ops = keys["agent"], keys["ops"]
    s = http.post("/sessions", a, {"agentRole": "r"}).json
    for i in range(4):
        http.put(f"/sessions/{s['sessionId']}", a, {"metadata": {f"k{i}": i}})
    trail = http.get(f"/audit?entityType=session&entityId={s['sessionId']}&limit=2", ops).json
    assert len(trail["items"]) == 2 and trail["nextToken"]
    ids = [e["eventId"] for e in trail["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    rest = http.get(f"/audit?entityType=session&entityId={s['sessionId']}&limit=10"
                    f"&nextToken={trail['nextToken']}", ops).json
    assert len(rest["items"]) == 3 and rest["nextToken"] is None
    assert rest["items"][-1]["action"] == "created"
    newest = trail["items"][0]
    since = http.get(f"/audit?since={newest['at']}", ops).json["items"]
    assert newest["eventId"] in [e["eventId"] for e in since]
    assert all(e["at"] >= newest["at"][:19] for e in since)
    everything = http.get("/audit?limit=100", ops).json["items"]
    assert "session" in {e["entityType"] for e in everything} and len(everything) >= 5


@pytest.mark.parametrize("method,path,body,field", [
    ("POST", "/tasks", {"toRole": "r", "type": "t"}, "idempotencyKey"),
    ("POST", "/tasks", {"idempotencyKey": "", "toRole": "r", "type": "t"}, "idempotencyKey"),
    ("POST", "/tasks", {"idempotencyKey": "x", "type": "t"}, "toRole"),
    ("GET", "/tasks?status=doing", None, "status"),
    ("GET", "/tasks?limit=0", None, "limit"),
    ("GET", "/status", None, "sessionId"),
    ("POST", "/approvals", {"requestedBy": "x"}, "taskId"),
    ("GET", "/approvals?status=maybe", None, "status"),
])
def test_bad_input(http, org, keys, method, path, body, field):
    r = http.call(method, path, keys["agent"], body)
    assert r.status == 400, r.json
    assert field in {d["field"] for d in r.json["error"]["details"]}, r.json


def test_decision_maybe_and_scopes_and_other_org(http, org, keys, root):
    a, ops = keys["agent"], keys["ops"]
    t = new_task(http, a, "sc", requiresApproval=True)
    approval = http.get("/approvals", a).json["items"][0]
    path = f"/approvals/{approval['approvalId']}/decision"
    r = http.post(path, ops, {"decision": "maybe", "decidedBy": "x"})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "decision"
    denied = http.post(path, a, {"decision": "approved", "decidedBy": "x"})
    assert denied.status == 403 and denied.json["error"]["code"] == "FORBIDDEN"
    assert http.get("/audit", a).status == 403
    denials = [e for e in http.get("/audit?limit=100", ops).json["items"] if e["action"] == "denied"]
    paths = {e["details"]["path"] for e in denials}
    assert "/audit" in paths and any(p.startswith("/approvals/") and p.endswith("/decision") for p in paths)
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json["adminKey"]
    assert http.get(f"/tasks/{t['taskId']}", other).status == 404
    assert http.put(f"/tasks/{t['taskId']}", other, {"status": "completed"}).status == 404
    assert http.post(path, other, {"decision": "approved", "decidedBy": "x"}).status == 404
    assert http.post("/approvals", other, {"taskId": t["taskId"], "requestedBy": "x"}).status == 404
    assert http.get(f"/audit?entityType=task&entityId={t['taskId']}", other).json["items"] == []
    assert http.get("/approvals", other).json["items"] == []
    # the same idempotencyKey in another org is another org's key
    assert http.post("/tasks", other, {"idempotencyKey": "sc", "toRole": "r", "type": "t"}).status == 201
