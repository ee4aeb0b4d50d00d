"""Races through the app with real threads: one winner per session move, every merge kept,
one task per idempotencyKey, one decision per approval.

In-process moto checks a condition and then writes without a lock; real
DynamoDB is atomic per request. `atomic_aws` (conftest.py) restores that (one AWS request at
a time, as the local stack does for DynamoDB); the threads still interleave
between requests (read, decide, conditional write), which is where these races live.
"""
from __future__ import annotations

import collections
import threading

from tests.conftest import key_of

def race(n: int, fn) -> list:
    """Run fn(i) on n threads released together; their results in order of i."""
    start = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - asserted by the caller
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(isinstance(r, Exception) for r in results), results
    return results


def test_20_conflicting_moves_one_terminal_state(http, org, atomic_aws):
    agent, ops = key_of(http, org, "agent", "a1"), key_of(http, org, "operator")
    s = http.post("/sessions", agent, {"agentRole": "r"}).json
    sid = s["sessionId"]
    assert http.put(f"/sessions/{sid}", agent, {"status": "active"}).status == 200
    targets = ["completed", "failed", "expired"]
    results = race(20, lambda i: http.put(f"/sessions/{sid}", agent, {"status": targets[i % 3]}))
    statuses = collections.Counter(r.status for r in results)
    assert statuses == {200: 1, 409: 19}, statuses
    winner = next(r for r in results if r.status == 200).json["status"]
    assert all(r.json["error"]["code"] == "INVALID_TRANSITION" for r in results if r.status == 409)
    assert http.get(f"/sessions/{sid}", agent).json["status"] == winner
    trail = http.get(f"/audit?entityType=session&entityId={sid}", ops).json["items"]
    terminal_events = [e for e in trail if e["action"] == "updated" and e["details"]["status"]["from"] == "active"]
    assert len(terminal_events) == 1 and terminal_events[0]["details"]["status"]["to"] == winner
    counts = http.get(f"/sessions?status={winner}", agent).json
    assert counts["total"] == 1 and http.get("/sessions?status=active", agent).json["total"] == 0


def test_20_concurrent_metadata_merges_all_kept(http, org, atomic_aws):
    agent = key_of(http, org, "agent", "a1")
    sid = http.post("/sessions", agent, {"agentRole": "r", "metadata": {"seed": 0}}).json["sessionId"]
    results = race(20, lambda i: http.put(f"/sessions/{sid}", agent, {"metadata": {f"k{i}": i}}))
    assert all(r.status == 200 for r in results), [r.json for r in results]
    metadata = http.get(f"/sessions/{sid}", agent).json["metadata"]
    assert metadata == {"seed": 0, **{f"k{i}": i for i in range(20)}}


def test_20_concurrent_creates_one_idempotency_key(http, org, atomic_aws, outbox):
    agent = key_of(http, org, "agent", "a1")
    outbox.drain()
    body = {"idempotencyKey": "once", "toRole": "coder", "type": "build", "payload": {"n": 1}}
    results = race(20, lambda i: http.post("/tasks", agent, body))
    assert collections.Counter(r.status for r in results) == {201: 1, 200: 19}, [r.json for r in results]
    assert len({r.json["taskId"] for r in results}) == 1
    listed = http.get("/tasks?toRole=coder", agent).json["items"]
    assert len(listed) == 1
    events = [e for e in outbox.drain() if e["event"] == "task:updated"]
    assert len(events) == 1, [(e["data"]["taskId"], e["data"]["createdAt"]) for e in events]


def test_10_concurrent_decisions_one_wins(http, org, atomic_aws, outbox):
    agent, ops = key_of(http, org, "agent", "a1"), key_of(http, org, "operator")
    task = http.post("/tasks", agent, {"idempotencyKey": "gate", "toRole": "deployer", "type": "deploy",
                                       "requiresApproval": True}).json
    assert task["status"] == "awaiting_approval"
    approval = http.get("/approvals?status=pending", ops).json["items"][0]
    assert approval["taskId"] == task["taskId"] and approval["task"]["status"] == "awaiting_approval"
    outbox.drain()
    decisions = ["approved", "rejected"]
    results = race(10, lambda i: http.post(f"/approvals/{approval['approvalId']}/decision", ops,
                                           {"decision": decisions[i % 2], "decidedBy": f"op{i}"}))
    assert collections.Counter(r.status for r in results) == {200: 1, 409: 9}, [r.json for r in results]
    won = next(r.json for r in results if r.status == 200)
    expected_task = "pending" if won["status"] == "approved" else "rejected"
    assert won["task"]["status"] == expected_task
    assert http.get(f"/tasks/{task['taskId']}", agent).json["status"] == expected_task
    events = [e["event"] for e in outbox.drain()]
    assert events.count("approval:decided") == 1 and events.count("task:updated") == 1
    trail = http.get(f"/audit?entityType=approval&entityId={approval['approvalId']}", ops).json["items"]
    assert [e["action"] for e in trail] == ["decided", "requested"]
