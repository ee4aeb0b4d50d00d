"""Leases and timeouts: the lease-check consumer, driven by the app's clock instead of waiting.

The consumer is state-driven, so a test can deliver a check at any moment: it
must drop, re-arm, re-queue or fail exactly as the stored run says.
"""
import json

from chalicelib.jobs import leases
from chalicelib.jobs.rules import Action


def _check(fleet, run):
    return leases.check(fleet.org["orgId"], run["jobId"], run["runId"])


def test_silent_agent_job_is_requeued_with_new_run_then_failed_after_max_attempts(fleet, clock, events, sent_checks):
    agent_id, _ = fleet.register("a", pools=["p"])
    job = fleet.create(pool="p", leaseSeconds=10, maxAttempts=2)
    run1 = fleet.poll(agent_id)["jobs"][0]
    assert _check(fleet, run1) is Action.REARM  # fired early (clock skew): waits for the rest
    clock.shift(10.001)
    assert _check(fleet, run1) is Action.REQUEUE
    requeued = fleet.job(job["jobId"])
    assert requeued["status"] == "QUEUED" and requeued["attempts"] == 1
    assert "claimedBy" not in requeued and "runId" not in requeued and "progressPercent" not in requeued
    assert _check(fleet, run1) is Action.DROP  # a duplicate of the message is harmless
    r = fleet.progress(agent_id, run1)  # the silent agent wakes up: too late
    assert r.status == 409 and r.json["error"]["code"] == "JOB_NOT_RUNNING"

    run2 = fleet.poll(agent_id)["jobs"][0]
    assert run2["jobId"] == job["jobId"] and run2["runId"] != run1["runId"] and run2["attempt"] == 2
    clock.shift(10.001)
    assert _check(fleet, run2) is Action.FAIL_LEASE
    failed = fleet.job(job["jobId"])
    assert failed["status"] == "FAILED" and failed["attempts"] == 2
    assert failed["error"]["code"] == "LEASE_EXPIRED" and failed["finishedAt"]
    assert events.names(job["jobId"]) == ["job:queued", "job:queued", "job:failed"]
    requeue_event = events.of(job["jobId"])[1]["data"]
    assert requeue_event["status"] == "QUEUED" and requeue_event["reason"] == "LEASE_EXPIRED"
    assert fleet.poll(agent_id)["jobs"] == []


def test_direct_job_is_requeued_to_the_same_agent(fleet, clock):
    a, _ = fleet.register("a")
    b, _ = fleet.register("b")
    job = fleet.create(agentId=a, leaseSeconds=5)
    run = fleet.poll(a)["jobs"][0]
    clock.shift(6)
    assert _check(fleet, run) is Action.REQUEUE
    assert fleet.poll(b)["jobs"] == []
    assert fleet.poll(a)["jobs"][0]["jobId"] == job["jobId"]


def test_progress_extends_the_lease_and_the_check_rearms_at_the_new_expiry(fleet, clock, sent_checks):
    agent_id, _ = fleet.register()
    fleet.create(agentId=agent_id, leaseSeconds=10)
    run = fleet.poll(agent_id)["jobs"][0]
    clock.shift(8)
    assert fleet.progress(agent_id, run, 30).status == 204
    sent_checks.clear()
    clock.shift(2.5)  # the first check fires at the original expiry
    assert _check(fleet, run) is Action.REARM
    [(body, delay)] = sent_checks
    assert body["runId"] == run["runId"] and delay == 8  # 10 s after the progress, rounded up
    clock.shift(7.6)
    assert _check(fleet, run) is Action.REQUEUE


def test_heartbeat_renews_every_lease_of_the_agent(fleet, clock, http):
    agent_id, key = fleet.register("a", pools=["hb"])
    for _ in range(2):
        fleet.create(pool="hb", leaseSeconds=10)
    runs = fleet.poll(agent_id, max=2)["jobs"]
    clock.shift(9)
    assert http.post(f"/agents/{agent_id}/heartbeat", key).status == 204
    clock.shift(2)
    assert [_check(fleet, r) for r in runs] == [Action.REARM, Action.REARM]
    clock.shift(9)
    assert [_check(fleet, r) for r in runs] == [Action.REQUEUE, Action.REQUEUE]


def test_timeout_fails_a_job_even_while_it_reports_progress(fleet, clock, events):
    agent_id, _ = fleet.register()
    job = fleet.create(agentId=agent_id, leaseSeconds=5, timeoutSeconds=12)
    run = fleet.poll(agent_id)["jobs"][0]
    for _ in range(3):
        clock.shift(4)
        assert fleet.progress(agent_id, run, 10).status == 204
        assert _check(fleet, run) in (Action.REARM, Action.FAIL_TIMEOUT)
    failed = fleet.job(job["jobId"])
    assert failed["status"] == "FAILED" and failed["error"]["code"] == "TIMED_OUT"
    assert failed["progressPercent"] == 10
    r = fleet.progress(agent_id, run)
    assert r.status == 409 and r.json["error"]["code"] == "JOB_NOT_RUNNING"
    assert events.names(job["jobId"])[-1] == "job:failed"


def test_checks_for_finished_cancelled_or_lost_runs_are_dropped(fleet, clock, http):
    agent_id, _ = fleet.register()
    fleet.create(agentId=agent_id, leaseSeconds=5)
    done = fleet.poll(agent_id)["jobs"][0]
    fleet.complete(agent_id, done)
    job = fleet.create(agentId=agent_id, leaseSeconds=5)
    cancelled = fleet.poll(agent_id)["jobs"][0]
    http.post(f"/jobs/{job['jobId']}/cancel", fleet.operator)
    clock.shift(60)
    assert _check(fleet, done) is Action.DROP
    assert _check(fleet, cancelled) is Action.DROP
    assert _check(fleet, {**done, "runId": "01LOSTCLAIM000000000000000"}) is Action.DROP
    assert fleet.job(done["jobId"])["status"] == "COMPLETED"


def test_a_late_progress_wins_over_a_requeue_decided_before_it(fleet, clock, monkeypatch):
    """The re-queue is conditional on the renewal it judged expired: progress in between keeps the run."""
    from chalicelib.jobs import store

    agent_id, _ = fleet.register()
    job = fleet.create(agentId=agent_id, leaseSeconds=5)
    run = fleet.poll(agent_id)["jobs"][0]
    clock.shift(6)
    real_get_run = store.get_run
    calls = {"n": 0}

    def get_run_then_progress(org_id, job_id):
        item = real_get_run(org_id, job_id)
        calls["n"] += 1
        if calls["n"] == 1:
            assert fleet.progress(agent_id, run, 60).status == 204  # lands between read and write
        return item

    monkeypatch.setattr(store, "get_run", get_run_then_progress)
    assert _check(fleet, run) is Action.REARM  # first attempt's write failed; the re-read saw the progress
    assert fleet.job(job["jobId"])["status"] == "RUNNING"


def test_sqs_handler_processes_a_batch_and_reports_partial_failures(app_module, fleet, clock, monkeypatch):
    from chalice.test import Client

    agent_id, _ = fleet.register()
    job = fleet.create(agentId=agent_id, leaseSeconds=5)
    run = fleet.poll(agent_id)["jobs"][0]
    clock.shift(6)
    good = leases.message(fleet.org["orgId"], run["jobId"], run["runId"])
    poison = "not json"
    boom = leases.message(fleet.org["orgId"], "01BOOM00000000000000000000", "r")
    real_check = leases.check

    def check(org_id, job_id, run_id):
        if job_id.startswith("01BOOM"):
            raise RuntimeError("transient")
        return real_check(org_id, job_id, run_id)

    monkeypatch.setattr(leases, "check", check)
    with Client(app_module.app) as client:
        event = client.events.generate_sqs_event(
            message_bodies=[json.dumps(good), poison, json.dumps(boom)], queue_name="jobs")
        result = client.lambda_.invoke("jobs_work", event).payload
    ids = [r["messageId"] for r in event["Records"]]
    assert result == {"batchItemFailures": [{"itemIdentifier": ids[2]}]}  # only the transient failure retries
    assert fleet.job(job["jobId"])["status"] == "QUEUED"
