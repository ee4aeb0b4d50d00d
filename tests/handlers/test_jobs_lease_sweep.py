"""The lease sweep schedule (jobs_lease_sweep): the durable backstop to the delayed lease checks.

Driven by the app's clock, like tests/handlers/test_jobs_leases.py: a run whose
timer message was lost is still re-queued or failed by the next sweep, a live
run is left alone, and the sweep sends no timers of its own.
"""
from chalice.app import ScheduledEventConfig

from chalicelib.jobs import leases


def test_sweep_requeues_expired_leases_fails_timeouts_and_leaves_live_runs(fleet, clock, sent_checks):
    agent_id, _ = fleet.register("sweeper", pools=["sweep"])
    expiring = fleet.create(pool="sweep", leaseSeconds=10)
    timing_out = fleet.create(pool="sweep", leaseSeconds=600, timeoutSeconds=20)
    runs = {run["jobId"]: run for run in fleet.poll(agent_id, max=2)["jobs"]}
    assert set(runs) == {expiring["jobId"], timing_out["jobId"]}
    live = fleet.create(pool="sweep", leaseSeconds=600)
    clock.shift(5)
    assert fleet.poll(agent_id)["jobs"][0]["jobId"] == live["jobId"]
    sent_checks.clear()  # as if every delayed check message had been lost

    clock.shift(6)  # past the first lease only
    assert leases.sweep() == {"requeue": 1, "rearm": 2}
    assert fleet.job(expiring["jobId"])["status"] == "QUEUED"
    clock.shift(10)  # past the second job's timeout
    assert leases.sweep() == {"fail_timeout": 1, "rearm": 1}
    failed = fleet.job(timing_out["jobId"])
    assert failed["status"] == "FAILED" and failed["error"]["code"] == "TIMED_OUT"
    assert fleet.job(live["jobId"])["status"] == "RUNNING"
    assert sent_checks == []  # the sweep never adds timers


def test_the_sweep_is_a_registered_schedule_of_the_app(app_module, fleet):
    (config,) = [source for source in app_module.app.event_sources
                 if isinstance(source, ScheduledEventConfig) and source.name == "jobs_lease_sweep"]
    assert config.schedule_expression.to_string() == "rate(1 minute)"
    event = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
             "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"], "detail": {}}
    assert isinstance(app_module.app.handler_map["jobs_lease_sweep"](event, None), dict)
