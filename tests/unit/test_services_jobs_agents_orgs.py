"""Jobs (with the lease check), agents and orgs: each service's decisions, through fakes (no AWS)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.agents import models as agent_models, service as agents, store as agent_store
from chalicelib.agents.models import Agent
from chalicelib.core import clock
from chalicelib.core.auth import Scope
from chalicelib.fanout import fanout
from chalicelib.core.errors import (
    Conflict, Forbidden, InvalidTransition, JobNotRunning, NotFound, Unavailable, ValidationError,
)
from chalicelib.jobs import models as job_models, service as jobs, store as job_store
from chalicelib.jobs.rules import Action, Status
from chalicelib.jobs.models import Job
from chalicelib.jobs.store import JobRun
from chalicelib.orgs import models as org_models, service as orgs, store as org_store
from chalicelib.orgs.models import KeyInfo
from tests.unit.fakes import ORG, fake_ctx, principal

NOW = 1_800_000_000.0
JID = "01JOB000000000000000000000"


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def _job(**changes) -> Job:
    job = Job(org_id=ORG, job_id=JID, agent_id="A1", pool=None, job_type="t", payload={"p": 1},
              status=Status.QUEUED, priority=0, attempts=0, max_attempts=3, lease_seconds=60, timeout_seconds=None,
              created_at="c", updated_at="u")
    return job.model_copy(update=changes)


def _run(job: Job, **changes) -> JobRun:
    return replace(JobRun.start(job, "R1", "A1", int(NOW * 1000), "s"), **changes)


def _agent(**changes) -> Agent:
    return Agent(agent_id="A1", name="a", pools=["p"], status="active", created_at="c").model_copy(update=changes)


# --- jobs: operators ----------------------------------------------------------------

def test_create_needs_exactly_one_target():
    ctx, _ = fake_ctx(principal())
    with pytest.raises(ValidationError) as e:
        jobs.create(ctx, job_models.CreateJobRequest(type="t"))
    assert e.value.details[0]["field"] == "agentId"
    with pytest.raises(ValidationError):
        jobs.create(ctx, job_models.CreateJobRequest(type="t", agent_id="A1", pool="p"))


def test_create_commits_the_job_its_audit_and_job_queued():
    ctx, ledger = fake_ctx(principal())
    out = jobs.create(ctx, job_models.CreateJobRequest(type="t", pool="p", priority=5))
    assert isinstance(out, Job) and out.status is Status.QUEUED and out.agent_id is None
    assert "agentId" not in out.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert "agent" not in ledger.names()  # a pool job checks no agent
    [(name, data)] = ledger.events()
    assert name == "job:queued" and data["pool"] == "p" and data["priority"] == 5 and "agentId" not in data


def test_create_for_a_missing_agent_is_404_and_for_an_inactive_one_409(monkeypatch):
    ctx, ledger = fake_ctx(principal())
    for known, error in ((None, NotFound), (False, Conflict)):
        ledger.fail["agent"] = 1
        monkeypatch.setattr(agents, "is_active", lambda org, a, known=known: known)
        with pytest.raises(error):
            jobs.create(ctx, job_models.CreateJobRequest(type="t", agent_id="A1"))


def test_contention_that_outlasts_the_retries_is_503():
    ctx, ledger = fake_ctx(principal())
    ledger.conflicts = 10
    with pytest.raises(Unavailable):
        jobs.create(ctx, job_models.CreateJobRequest(type="t", pool="p"))
    assert len(ledger.attempts) == 4


def test_cancel_a_running_job_ends_its_run_and_tells_the_claiming_agent(monkeypatch):
    job = _job(status=Status.RUNNING, run_id="R1", claimed_by="A9", attempts=1)
    monkeypatch.setattr(job_store, "get_job_and_run", lambda org, jid: (job, _run(job)))
    ctx, ledger = fake_ctx(principal())
    assert jobs.cancel(ctx, JID).status is Status.CANCELLED
    assert ledger.names()[:2] == ["job", "run"]
    [(name, data)] = ledger.events()
    assert name == "job:cancelled" and data["runId"] == "R1" and data["claimedBy"] == "A9"
    assert ledger.committed[-1][next(n for n in ledger.names() if n.startswith("event:"))].item["agentId"] == "A9"


def test_cancel_twice_is_a_no_op_and_a_finished_job_cannot_be_cancelled(monkeypatch):
    ctx, ledger = fake_ctx(principal())
    monkeypatch.setattr(job_store, "get_job_and_run", lambda org, jid: (_job(status=Status.CANCELLED), None))
    assert jobs.cancel(ctx, JID).status is Status.CANCELLED and not ledger.attempts
    monkeypatch.setattr(job_store, "get_job_and_run", lambda org, jid: (_job(status=Status.COMPLETED), None))
    with pytest.raises(InvalidTransition):
        jobs.cancel(ctx, JID)


def test_cancel_judges_again_when_the_job_changed_under_it(monkeypatch):
    monkeypatch.setattr(job_store, "get_job_and_run", lambda org, jid: (_job(), None))
    ctx, ledger = fake_ctx(principal())
    ledger.fail["job"] = 2
    assert jobs.cancel(ctx, JID).status is Status.CANCELLED and len(ledger.attempts) == 3


# --- jobs: agents ---------------------------------------------------------------------

def test_poll_claims_in_order_and_moves_past_lost_races(monkeypatch):
    queued = [_job(job_id=f"01J{i:023d}", priority=p) for i, p in enumerate((0, 9, 0))]
    monkeypatch.setattr(job_store, "ready", lambda org, target, limit: list(queued))
    sent = []
    monkeypatch.setattr(job_store, "send_checks", sent.extend)
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    ledger.returned["agent"] = agent_store.to_item(ORG, _agent(pools=[]))  # the touch's UpdateItem answers it
    ledger.fail["job"] = 1  # the first claim loses its race
    out = jobs.poll(ctx, job_models.PollQuery(agent_id="A1", max=2))
    assert isinstance(out, job_models.PollResponse)
    assert [j.job_id for j in out.jobs] == [queued[0].job_id, queued[2].job_id]
    assert out.next_poll_seconds == 0  # lost a race: more work is likely there
    assert len(sent) == 3  # a timer for every claim tried, before the claim
    assert ledger.attempts[0] == ["agent"]  # the touch (lastSeenAt), then the claims
    assert all(names == ["job", "run"] for names in ledger.attempts[1:])


def test_another_agents_key_cannot_poll_progress_or_complete_for_it():
    ctx, _ = fake_ctx(principal(Scope.AGENT, "A2"))
    with pytest.raises(Forbidden):
        jobs.poll(ctx, job_models.PollQuery(agent_id="A1"))
    with pytest.raises(Forbidden):
        jobs.progress(ctx, job_models.ProgressRequest(job_id=JID, run_id="R1", agent_id="A1", percent=1))
    with pytest.raises(Forbidden):
        jobs.complete(ctx, job_models.CompleteRequest(job_id=JID, run_id="R1", agent_id="A1", status="COMPLETED"))


def test_why_a_progress_failed_is_read_only_after_it_failed(monkeypatch):
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    job = _job(status=Status.COMPLETED, run_id="R1", claimed_by="A1")
    monkeypatch.setattr(agents, "is_active", lambda org, a: True)
    monkeypatch.setattr(job_store, "get_job_and_run", lambda org, jid: (job, None))
    ledger.fail["run"] = 1
    with pytest.raises(JobNotRunning):
        jobs.progress(ctx, job_models.ProgressRequest(job_id=JID, run_id="R1", agent_id="A1", percent=5))
    ledger.fail["agent"] = 1
    monkeypatch.setattr(agents, "is_active", lambda org, a: False)
    with pytest.raises(Forbidden):
        jobs.progress(ctx, job_models.ProgressRequest(job_id=JID, run_id="R1", agent_id="A1", percent=5))


def test_the_same_completion_again_is_a_no_op_and_another_is_409(monkeypatch):
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    command = job_models.CompleteRequest(job_id=JID, run_id="R1", agent_id="A1", status="FAILED", error="boom")
    jobs.complete(ctx, command)
    [(name, data)] = ledger.events()
    assert name == "job:failed" and data["error"] == {"code": "JOB_FAILED", "message": "boom"}
    fingerprint = ledger.committed[-1]["job"].set["completion"]
    done = _job(status=Status.FAILED, run_id="R1", claimed_by="A1", completion=fingerprint)
    monkeypatch.setattr(job_store, "get_job_and_run", lambda org, jid: (done, None))
    monkeypatch.setattr(agents, "is_active", lambda org, a: True)
    ledger.fail["job"] = 2
    assert jobs.complete(ctx, command) is None
    with pytest.raises(JobNotRunning):
        jobs.complete(ctx, command.model_copy(update={"status": "COMPLETED", "error": None}))


# --- jobs: the lease check -------------------------------------------------------------

def test_an_expired_lease_with_attempts_left_requeues_unless_a_heartbeat_renewed_it(monkeypatch):
    job = _job(status=Status.RUNNING, run_id="R1", attempts=1)
    run = _run(job, renewed_ms=int(NOW * 1000) - 61_000)
    monkeypatch.setattr(job_store, "get_run", lambda org, jid: run)
    monkeypatch.setattr(agents, "heartbeat_of", lambda org, a: None)
    ctx, ledger = fake_ctx()
    assert jobs.check_run(ctx, jobs.CheckRun(JID, "R1")) is Action.REQUEUE
    assert ledger.names()[:3] == ["job", "run", "heartbeat"]
    [(name, data)] = ledger.events()
    assert name == "job:queued" and data["reason"] == "LEASE_EXPIRED" and data["agentId"] == "A1"
    sent = []
    monkeypatch.setattr(job_store, "send_checks", sent.extend)
    monkeypatch.setattr(agents, "heartbeat_of", lambda org, a: int(NOW * 1000) - 1000)
    assert jobs.check_run(ctx, jobs.CheckRun(JID, "R1")) is Action.REARM and len(sent) == 1
    assert jobs.check_run(ctx, jobs.CheckRun(JID, "R1", rearm=False)) is Action.REARM and len(sent) == 1


def test_a_run_past_its_timeout_fails_without_asking_for_the_heartbeat(monkeypatch):
    job = _job(status=Status.RUNNING, run_id="R1", attempts=1, timeout_seconds=10)
    run = _run(job, deadline_ms=int(NOW * 1000) - 1)
    monkeypatch.setattr(job_store, "get_run", lambda org, jid: run)
    monkeypatch.setattr(agents, "heartbeat_of", lambda *a: pytest.fail("read the heartbeat"))
    ctx, ledger = fake_ctx()
    assert jobs.check_run(ctx, jobs.CheckRun(JID, "R1")) is Action.FAIL_TIMEOUT
    assert "heartbeat" not in ledger.names()
    assert ledger.events()[0][1]["error"]["code"] == "TIMED_OUT"


def test_a_check_for_another_run_is_dropped(monkeypatch):
    monkeypatch.setattr(job_store, "get_run", lambda org, jid: _run(_job()))
    assert jobs.check_run(fake_ctx()[0], jobs.CheckRun(JID, "OTHER")) is Action.DROP


def test_the_run_item_reads_the_jobs_agent_under_its_old_name_too():
    run = _run(_job())
    item = run.to_item()
    assert item["agentId"] == "A1" and "jobAgentId" not in item
    legacy = {k: v for k, v in item.items() if k not in ("agentId", "priority")} | {"jobAgentId": "A1"}
    assert JobRun.from_item(legacy) == run


# --- agents ---------------------------------------------------------------------------

def test_register_commits_the_agent_its_key_and_one_membership_per_pool():
    ctx, ledger = fake_ctx(principal())
    out = agents.register(ctx, agent_models.RegisterAgentRequest(name="a", pools=["p", "q"]))
    assert out.api_key is not None and out.api_key.startswith("cpk.") and out.last_seen_at is None
    assert out.model_dump(mode="json", exclude_none=True)["lastSeenAt"] is None  # spelled out as null
    assert ledger.names()[:4] == ["agent", "key", "pool:p", "pool:q"]


def test_a_heartbeat_of_an_unknown_or_inactive_agent_is_403():
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    ledger.fail["agent"] = 1
    with pytest.raises(Forbidden):
        agents.heartbeat(ctx, "A1")
    with pytest.raises(Forbidden):
        agents.heartbeat(ctx, "A2")


def test_deactivating_twice_is_a_no_op(monkeypatch):
    closed = []
    monkeypatch.setattr(fanout, "close_opened_with", lambda org, **who: closed.append(who))
    ctx, ledger = fake_ctx(principal())
    monkeypatch.setattr(agent_store, "get", lambda org, a, consistent=False: _agent(status="inactive"))
    assert agents.deactivate(ctx, "A1").status == "inactive" and not ledger.attempts
    monkeypatch.setattr(agent_store, "get", lambda org, a, consistent=False: _agent())
    ledger.fail["agent"] = 1  # deactivated concurrently: the same outcome
    assert agents.deactivate(ctx, "A1").status == "inactive"
    assert closed == [{"agent_id": "A1"}]  # its sockets close


def test_poll_refuses_an_inactive_agent():
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    ledger.fail["agent"] = 1  # the touch's condition (active) fails and DynamoDB returns the item as it is
    ledger.returned["agent"] = agent_store.to_item(ORG, _agent(status="inactive"))
    with pytest.raises(Forbidden):
        agents.for_poll(ctx, "A1")
    assert ledger.attempts == [["agent"]] and not ledger.committed


def test_poll_touches_the_agent_through_the_unit_of_work_and_refuses_an_unknown_one():
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    ledger.returned["agent"] = agent_store.to_item(ORG, _agent(pools=["p"]))
    assert agents.for_poll(ctx, "A1").pools == ["p"]
    [touch] = ledger.committed[0].values()
    assert touch.set.keys() == {"lastSeenAt"} and ":stale" in touch.values
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    ledger.fail["agent"] = 1  # no item: an unknown agent
    with pytest.raises(Forbidden):
        agents.for_poll(ctx, "A1")


# --- orgs -----------------------------------------------------------------------------

def test_only_a_root_admin_creates_organizations():
    with pytest.raises(Forbidden):
        orgs.create_org(fake_ctx(principal(Scope.ADMIN))[0], org_models.CreateOrgRequest(name="x"))
    ctx, ledger = fake_ctx(principal(Scope.ADMIN, root=True))
    out = orgs.create_org(ctx, org_models.CreateOrgRequest(name="x"))
    assert ledger.names()[:2] == ["org", "key"] and ledger.audits()[0]["orgId"] == ORG and out.admin_key


def test_key_rules():
    ctx, _ = fake_ctx(principal(Scope.ADMIN))
    for body, field in (({"name": "k", "scope": "agent"}, "agentId"),
                        ({"name": "k", "scope": "operator", "agentId": "A1"}, "agentId"),
                        ({"name": "k", "scope": "operator", "expiresAt": "2000-01-01T00:00:00Z"}, "expiresAt")):
        with pytest.raises(ValidationError) as e:
            orgs.create_key(ctx, org_models.CreateKeyRequest.model_validate(body))
        assert e.value.details[0]["field"] == field


def test_revoking_twice_is_idempotent_and_another_orgs_key_is_404(monkeypatch):
    closed = []
    monkeypatch.setattr(fanout, "close_opened_with", lambda org, **who: closed.append(who))
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    revoked = KeyInfo(key_id="K1", name="k", scope="operator", revoked_at="then", created_at="c")
    monkeypatch.setattr(org_store, "get_key", lambda key_id: (ORG, revoked))
    ledger.fail["key"] = 1
    orgs.revoke_key(ctx, "K1")
    assert closed == [{"key_id": "K1"}]  # revoking again still closes what may be open
    monkeypatch.setattr(org_store, "get_key", lambda key_id: ("OTHER", revoked))
    ledger.fail["key"] = 1
    with pytest.raises(NotFound):
        orgs.revoke_key(ctx, "K1")


def test_list_keys_returns_the_key_list_with_unset_fields_spelled_out_as_null(monkeypatch):
    ctx, _ = fake_ctx(principal(Scope.ADMIN))
    key = KeyInfo(key_id="K1", name="k", scope="operator", created_at="c")
    monkeypatch.setattr(org_store, "list_keys", lambda *a: org_store.KeyPage([key], None))
    page = orgs.list_keys(ctx, org_models.ListQuery())
    assert isinstance(page, org_models.KeyList) and page.items == [key]
    shown = page.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert shown["items"][0]["expiresAt"] is None and shown["items"][0]["revokedAt"] is None
