"""The idempotency record in the request's unit of work (core/idempotency.py), on moto.

Every POST route runs once with an Idempotency-Key and its AWS calls are recorded
(botocore before-call hooks, here in the test only): a route left in the default
staged mode must make only reads before its one staged commit, no AWS call after
it but the pipeline's one commit with the record, and never a second commit; a
route that cannot must say `idempotency="locked"` on its endpoint(). A new POST
route without a sample here fails `test_every_post_route_is_covered`.
"""
from __future__ import annotations

import collections
import threading

import pytest

from chalicelib.aws import clients
from chalicelib.core import api, idempotency, tx

READS = ("Get", "Query", "Scan", "BatchGet", "Describe", "List", "Head")


class Recorder:
    def __init__(self):
        self.calls: list[str] = []

    def hook(self, model, **_):
        self.calls.append(model.name)


@pytest.fixture
def recorder(app_module, monkeypatch):
    rec = Recorder()
    services = ("dynamodb", "sqs", "s3", "events")
    for name in services:
        clients.client(name).meta.events.register("before-call.*.*", rec.hook)
    take = tx.Staging.take

    def recorded_take(self, writes):
        try:
            take(self, writes)
        except tx.NotStageable:
            rec.calls.append("NOT_STAGEABLE")
            raise
        rec.calls.append("TAKE")

    locked = idempotency.run_locked

    def recorded_locked(*args, **kwargs):
        rec.calls.append("LOCKED")
        return locked(*args, **kwargs)

    monkeypatch.setattr(tx.Staging, "take", recorded_take)
    monkeypatch.setattr(idempotency, "run_locked", recorded_locked)
    yield rec
    for name in services:
        clients.client(name).meta.events.unregister("before-call.*.*", rec.hook)


@pytest.fixture
def world(http, org, root):
    admin = org["adminKey"]
    ops = http.post("/keys", admin, {"name": "ops", "scope": "operator"}).json["apiKey"]

    def agent(name):
        r = http.post("/agents", ops, {"name": name, "pools": ["p"]})
        assert r.status == 201, r.json
        return r.json["agentId"], r.json["apiKey"]

    agent_id, agent_key = agent("a1")
    spare_id, _ = agent("spare")
    job = http.post("/jobs", ops, {"type": "t", "payload": {}, "agentId": agent_id})
    assert job.status == 201, job.json
    cancel_job = http.post("/jobs", ops, {"type": "t", "payload": {}, "pool": "nobody"}).json
    polled = http.get(f"/jobs/poll?agentId={agent_id}&max=1", agent_key).json["jobs"][0]
    instance = http.post("/instances", ops, {"agentId": agent_id, "name": "i1"})
    assert instance.status == 201, instance.json
    task = http.post("/tasks", agent_key, {"idempotencyKey": "w", "toRole": "r", "type": "t"}).json
    gated = http.post("/tasks", agent_key, {"idempotencyKey": "g", "toRole": "r", "type": "t",
                                            "requiresApproval": True}).json
    approval = http.get("/approvals?status=pending", ops).json["items"][0]
    assert approval["taskId"] == gated["taskId"]
    command = http.post(f"/agents/{agent_id}/commands", ops, {"type": "restart"})
    assert command.status == 201, command.json
    return {"root": root["adminApiKey"], "admin": admin, "ops": ops, "agent": agent_id, "agentKey": agent_key,
            "spare": spare_id, "job": polled, "cancel": cancel_job["jobId"], "instance": instance.json["instanceId"],
            "task": task["taskId"], "approval": approval["approvalId"], "command": command.json["commandId"]}


def _samples(w):
    """(path template, concrete path, key, body) for one successful call of each POST route."""
    job = w["job"]
    a, ak = w["agent"], w["agentKey"]
    return [
        ("/orgs", "/orgs", w["root"], {"name": "staged"}),
        ("/keys", "/keys", w["admin"], {"name": "k", "scope": "operator"}),
        ("/agents", "/agents", w["ops"], {"name": "a2"}),
        ("/agents/{agentId}/heartbeat", f"/agents/{a}/heartbeat", ak, None),
        ("/jobs", "/jobs", w["ops"], {"type": "t", "payload": {}, "agentId": a}),
        ("/jobs/progress", "/jobs/progress", ak,
         {"jobId": job["jobId"], "runId": job["runId"], "agentId": a, "percent": 10}),
        ("/jobs/complete", "/jobs/complete", ak,
         {"jobId": job["jobId"], "runId": job["runId"], "agentId": a, "status": "COMPLETED"}),
        ("/jobs/{jobId}/cancel", f"/jobs/{w['cancel']}/cancel", w["ops"], None),
        ("/tasks", "/tasks", ak, {"idempotencyKey": "s", "toRole": "r", "type": "t"}),
        ("/approvals", "/approvals", ak, {"taskId": w["task"], "requestedBy": "me"}),
        ("/approvals/{approvalId}/decision", f"/approvals/{w['approval']}/decision", w["ops"],
         {"decision": "approved", "decidedBy": "op"}),
        ("/sessions", "/sessions", ak, {"agentRole": "r"}),
        ("/instances", "/instances", w["ops"], {"agentId": a, "name": "i2"}),
        ("/agents/{agentId}/commands", f"/agents/{a}/commands", w["ops"], {"type": "restart"}),
        ("/commands/{commandId}/ack", f"/commands/{w['command']}/ack", ak, {"status": "acked"}),
        ("/settings/validate", "/settings/validate", ak,
         {"gameType": "none", "fileType": "none", "values": {}}),
        ("/agents/{agentId}/config/reported", f"/agents/{a}/config/reported", ak, {"version": 0, "status": "applied"}),
    ]


def _staged_post_paths():
    return {ep.path for ep in api.ENDPOINTS if ep.method == "POST" and ep.idempotency == "staged"}


def test_every_post_route_is_covered(app_module, http, world):
    assert {template for template, *_ in _samples(world)} == _staged_post_paths()


def test_every_staged_post_route_stages_its_one_commit(app_module, http, world, recorder):
    broken = {}
    for template, path, key, body in _samples(world):
        recorder.calls.clear()
        r = http.post(path, key, body, headers={"Idempotency-Key": f"staged:{template}"})
        calls = list(recorder.calls)
        problems = []
        if not 200 <= r.status < 300:
            problems.append(f"answered {r.status} {r.json}")
        if "LOCKED" in calls or "NOT_STAGEABLE" in calls:
            problems.append("fell back to the lock (a second commit or a bulk write)")
        if calls.count("TAKE") > 1:
            problems.append("two staged commits")
        before = calls[:calls.index("TAKE")] if "TAKE" in calls else calls[:-1]
        after = calls[calls.index("TAKE") + 1:] if "TAKE" in calls else calls[-1:]
        writes = [c for c in before if not c.startswith(READS)]
        if writes:
            problems.append(f"AWS writes outside the unit of work: {writes}")
        if after not in (["TransactWriteItems"], ["PutItem"]):
            problems.append(f"after the staged commit: {after} (only the pipeline's commit may follow)")
        if problems:
            broken[template] = (problems, calls)
    assert not broken, broken


def test_a_replay_answers_the_stored_response_and_writes_nothing_new(app_module, http, world, recorder):
    body = {"agentRole": "replayed"}
    first = http.post("/sessions", world["agentKey"], body, headers={"Idempotency-Key": "replay-1"})
    recorder.calls.clear()
    again = http.post("/sessions", world["agentKey"], body, headers={"Idempotency-Key": "replay-1"})
    assert first.status == again.status == 201
    assert again.json == first.json and again.headers.get("Idempotent-Replayed") == "true"
    assert "LOCKED" not in recorder.calls
    other = http.post("/sessions", world["agentKey"], {"agentRole": "other"}, headers={"Idempotency-Key": "replay-1"})
    assert other.status == 409 and other.json["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_a_retry_that_trips_on_the_first_calls_change_replays_it(app_module, http, world):
    """Deciding twice: the second run answers 409 (already decided); the first call's record is replayed."""
    path = f"/approvals/{world['approval']}/decision"
    body = {"decision": "approved", "decidedBy": "op"}
    first = http.post(path, world["ops"], body, headers={"Idempotency-Key": "decide"})
    again = http.post(path, world["ops"], body, headers={"Idempotency-Key": "decide"})
    assert first.status == 200, first.json
    assert again.status == 200 and again.json == first.json and again.headers.get("Idempotent-Replayed") == "true"
    fresh = http.post(path, world["ops"], body, headers={"Idempotency-Key": "decide-other"})
    assert fresh.status == 409, fresh.json  # without the record: the state the first call left


def test_racing_repeats_of_a_staged_post_have_exactly_one_effect(app_module, http, world, atomic_aws, outbox):
    """Real threads on moto: 12 repeats of one Idempotency-Key, one session, one event, one answer."""
    outbox.drain()
    body = {"agentRole": "raced"}
    start = threading.Barrier(12)
    results = [None] * 12

    def repeat(i):
        start.wait()
        results[i] = http.post("/sessions", world["agentKey"], body, headers={"Idempotency-Key": "race-1"})

    threads = [threading.Thread(target=repeat, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert collections.Counter(r.status for r in results) == {201: 12}, [r.json for r in results]
    assert len({r.json["sessionId"] for r in results}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in results) == 11
    events = [e for e in outbox.drain() if e["event"] == "session:updated"]
    assert [e["data"]["sessionId"] for e in events] == [results[0].json["sessionId"]]
    listed = http.get("/sessions?pageSize=100", world["agentKey"])
    assert listed.status == 200
    assert [s["sessionId"] for s in listed.json["sessions"] if s.get("agentRole") == "raced"] == [results[0].json["sessionId"]]


def test_racing_repeats_whose_own_condition_also_fails_replay_the_winner(app_module, http, world, atomic_aws,
                                                                         outbox):
    """POST /tasks holds a key of its own (the body's idempotencyKey): a losing repeat's transaction
    fails on that write and on the record at once; the record decides: the winner's 201 is replayed."""
    outbox.drain()
    body = {"idempotencyKey": "raced-task", "toRole": "r", "type": "t"}
    start = threading.Barrier(10)
    results = [None] * 10

    def repeat(i):
        start.wait()
        results[i] = http.post("/tasks", world["agentKey"], body, headers={"Idempotency-Key": "race-task"})

    threads = [threading.Thread(target=repeat, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert collections.Counter(r.status for r in results) == {201: 10}, [r.json for r in results]
    assert len({r.json["taskId"] for r in results}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in results) == 9
    created = [e for e in outbox.drain() if e["event"] == "task:updated"]
    assert [e["data"]["taskId"] for e in created] == [results[0].json["taskId"]]
