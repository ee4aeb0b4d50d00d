"""Jobs: create, read, list, cancel; the agent side (poll, progress, complete); the lease check.

Every state change is one unit of work (`ctx.tx()`) holding the conditional
writes and the outbox event (and, for operator actions, the audit event).
Errors are classified only after a write failed, by the name of the write
whose condition failed, with one extra read on that path.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from chalicelib.agents import service as agents
from chalicelib.core import ids, observability
from chalicelib.core.context import Ctx
from chalicelib.core.lookup import found
from chalicelib.core.errors import (
    Conflict, Forbidden, InvalidTransition, JobNotRunning, NotFound, PayloadTooLarge, Unavailable, ValidationError,
)
from chalicelib.core.paging import next_token, start_key
from chalicelib.core.tx import TransactionConflict, TxFailed, retry_conflicts
from chalicelib.jobs import events, models, rules, store
from chalicelib.jobs.rules import Action, Status
from chalicelib.jobs.models import Job
from chalicelib.jobs.store import JobRun

log = logging.getLogger(__name__)
T = TypeVar("T")
CLAIM_SLACK = 4  # extra candidates read per poll, for the ones another poll wins first
CHECK_ATTEMPTS = 4  # lease check re-reads when a transition races with progress, a heartbeat or a completion


def _retry_conflicts(fn: Callable[[], T]) -> T:
    """Transactions touching the same item at the same moment cancel each other: retried, then 503."""
    try:
        return retry_conflicts(fn)
    except TransactionConflict:
        raise Unavailable("the job is busy; retry", headers={"Retry-After": "1"}) from None


def _now(ctx: Ctx) -> tuple[int, str]:
    now_ms = int(ctx.now() * 1000)
    return now_ms, ctx.iso(now_ms / 1000)


def _shown(job: Job, run: JobRun | None) -> Job:
    """The job with its latest run's progress (the run item holds it, so progress writes touch no index)."""
    if run is None:
        return job
    return job.with_progress(run.run_id, run.progress_percent, run.progress_message)


# --- operators -------------------------------------------------------------------

def create(ctx: Ctx, command: models.CreateJobRequest) -> Job:
    c = command
    if (c.agent_id is None) == (c.pool is None):
        field = "agentId" if c.agent_id is None else "pool"
        raise ValidationError("give exactly one of agentId and pool",
                              [{"field": field, "message": "exactly one of agentId and pool is required"}])
    if rules.json_size(c.payload) > rules.PAYLOAD_MAX_BYTES:
        raise PayloadTooLarge(f"payload is over {rules.PAYLOAD_MAX_BYTES} bytes",
                              [{"field": "payload", "message": f"at most {rules.PAYLOAD_MAX_BYTES} bytes of JSON"}])
    now = ctx.iso()
    job = Job(org_id=ctx.org_id, job_id=ids.new_id(), agent_id=c.agent_id, pool=c.pool, type=c.type,
              payload=c.payload, status=Status.QUEUED, priority=c.priority, attempts=0,
              max_attempts=c.max_attempts, lease_seconds=c.lease_seconds, timeout_seconds=c.timeout_seconds,
              created_at=now, updated_at=now)
    tx = ctx.tx()
    if c.agent_id is not None:
        agents.require_active(tx, ctx.org_id, c.agent_id)
    tx.put("job", store.job_put(job))
    tx.audit("job", job.job_id, "created", {"agentId": c.agent_id, "pool": c.pool, "type": c.type})
    tx.emit(events.QUEUED, events.queued(job, now), agent_id=c.agent_id)
    try:
        _retry_conflicts(tx.commit)
    except TxFailed as failed:
        if failed.name == "agent" and c.agent_id is not None:
            if agents.is_active(ctx.org_id, c.agent_id) is None:
                raise NotFound(f"no agent {c.agent_id}", [{"field": "agentId", "message": "no such agent"}]) from None
            raise Conflict(f"agent {c.agent_id} is inactive",
                           [{"field": "agentId", "message": "the agent is inactive"}]) from None
        raise
    return job


def get(ctx: Ctx, job_id: str) -> Job:
    job, run = store.get_job_and_run(ctx.org_id, job_id)
    return _shown(found(job, "job", job_id), run)


def list_jobs(ctx: Ctx, query: models.JobListQuery) -> models.JobList:
    q = query
    if q.agent_id is not None and q.pool is not None:
        raise ValidationError.field("pool", "filter by agentId or by pool, not both (a job has one target)")
    scope = f"jobs:{ctx.org_id}:{q.agent_id or ''}:{q.pool or ''}:{q.status or ''}"
    start = start_key(q.next_token, scope)
    target = rules.target(q.agent_id, q.pool) if (q.agent_id or q.pool) else None
    listed = store.list_jobs(ctx.org_id, target, Status(q.status) if q.status else None, q.limit, start)
    runs = store.runs_of(ctx.org_id, [j.job_id for j in listed.items if j.run_id])
    return models.JobList(items=[_shown(j, runs.get(j.job_id)) for j in listed.items],
                          next_token=next_token(listed.last_key, scope))


def cancel(ctx: Ctx, job_id: str) -> Job:
    for _ in range(4):
        job, run = store.get_job_and_run(ctx.org_id, job_id)
        job = found(job, "job", job_id)
        status = job.status
        if status is Status.CANCELLED:
            return _shown(job, run)  # cancelling twice is a no-op
        if status.terminal:
            raise InvalidTransition(f"job {job_id} is {status.value}; only QUEUED or RUNNING jobs can be cancelled")
        now_ms, now = _now(ctx)
        run_id = job.run_id if status is Status.RUNNING else None
        tx = ctx.tx()
        tx.update("job", store.finish_job_update(ctx.org_id, job_id, job.target, job.order_key, Status.CANCELLED,
                                                 now, expect=status, run_id=run_id))
        if run_id:
            tx.update("run", store.end_run_update(ctx.org_id, job_id, run_id, now_ms))
        tx.audit("job", job_id, "cancelled", {"from": status.value})
        tx.emit(events.CANCELLED, events.cancelled(job, ctx.iso()), agent_id=job.event_agent)
        try:
            _retry_conflicts(tx.commit)
        except TxFailed:
            continue  # claimed, finished or re-queued meanwhile: judge again
        return _shown(job.finished(Status.CANCELLED, now), run)
    raise Unavailable("the job kept changing; retry", headers={"Retry-After": "1"})


# --- agents --------------------------------------------------------------------------

def poll(ctx: Ctx, command: models.PollQuery) -> models.PollResponse:
    agent_id, wanted, org_id = command.agent_id, command.max, ctx.org_id
    ctx.require_agent(agent_id)
    agent = _retry_conflicts(lambda: agents.for_poll(ctx, agent_id))
    targets = [rules.target(agent_id, None)] + [rules.target(None, p) for p in agent.pools]
    candidates = rules.merge_candidates([store.ready(org_id, t, wanted + CLAIM_SLACK) for t in targets],
                                        key=lambda job: job.order_key)
    claimed: list[models.PolledJob] = []
    lost = 0
    position = 0
    while len(claimed) < wanted and position < len(candidates):
        batch = candidates[position:position + wanted - len(claimed)]
        position += len(batch)
        now_ms, now = _now(ctx)
        runs = [JobRun.start(job, ids.new_id(), agent_id, now_ms, now) for job in batch]
        # The timers first: a claim never exists without its lease check (see leases.py).
        store.send_checks([(rules.check_message(org_id, r.job_id, r.run_id),
                            rules.delay_seconds(rules.first_check_ms(now_ms, r.lease_seconds, r.timeout_seconds),
                                                now_ms))
                           for r in runs])
        lost_before = lost
        for job, run in zip(batch, runs, strict=True):
            tx = ctx.tx()
            tx.update("job", store.claim_job_update(job, run, now))
            tx.put("run", store.run_put(run))
            try:
                tx.commit()
            except (TxFailed, TransactionConflict):
                lost += 1  # another poll won it (or it was cancelled): the next candidate
                continue
            claimed.append(models.PolledJob(
                job_id=job.job_id, run_id=run.run_id, type=job.job_type, payload=job.payload,
                attempt=run.attempt, lease_expires_at=ctx.iso(run.lease_end_ms / 1000),
                lease_seconds=run.lease_seconds, timeout_seconds=run.timeout_seconds or None))
        if lost > lost_before:
            candidates[position:] = rules.spread(candidates[position:], priority=lambda job: job.priority)
    if claimed:
        observability.count("JobsClaimed", len(claimed))
    return models.PollResponse(jobs=claimed,
                               next_poll_seconds=rules.next_poll_seconds(len(claimed), wanted, lost,
                                                                         ctx.settings.jobs_idle_poll_seconds))


def _not_running(ctx: Ctx, job_id: str, run_id: str, agent_id: str) -> Exception:
    """Why a progress/completion write failed (one read on the error path only)."""
    active = agents.is_active(ctx.org_id, agent_id)
    if not active:
        return Forbidden(f"agent {agent_id} is unknown or inactive")
    job, run = store.get_job_and_run(ctx.org_id, job_id)
    if job is None:
        return NotFound(f"no job {job_id}")
    if run is not None and run.run_id == run_id and run.claimed_by != agent_id:
        return Forbidden(f"run {run_id} of job {job_id} belongs to another agent")
    return JobNotRunning(f"job {job_id} is {job.status.value} and not running under run {run_id}",
                         [{"field": "runId", "message": "not the job's running run"}])


def progress(ctx: Ctx, command: models.ProgressRequest) -> None:
    c = command
    ctx.require_agent(c.agent_id)
    now_ms, now = _now(ctx)
    tx = ctx.tx()
    agents.require_active(tx, ctx.org_id, c.agent_id)
    tx.update("run", store.progress_update(ctx.org_id, c.job_id, c.run_id, c.agent_id, c.percent, c.message,
                                           now_ms, now))
    tx.emit(events.PROGRESS, events.progress(c.job_id, c.run_id, c.agent_id, c.percent, c.message, now),
            agent_id=c.agent_id)
    try:
        _retry_conflicts(tx.commit)
    except TxFailed:
        raise _not_running(ctx, c.job_id, c.run_id, c.agent_id) from None


def complete(ctx: Ctx, command: models.CompleteRequest) -> None:
    c = command
    ctx.require_agent(c.agent_id)
    if c.result is not None and rules.json_size(c.result) > rules.PAYLOAD_MAX_BYTES:
        raise PayloadTooLarge(f"result is over {rules.PAYLOAD_MAX_BYTES} bytes",
                              [{"field": "result", "message": f"at most {rules.PAYLOAD_MAX_BYTES} bytes of JSON"}])
    new = Status(c.status)
    reported = c.error.model_dump(exclude_none=True) if isinstance(c.error, models.AgentError) else c.error
    error = rules.normalize_error(reported)
    if new is Status.FAILED and error is None:
        error = {"code": rules.AGENT_FAILED, "message": "the agent reported a failure"}
    fingerprint = rules.completion_fingerprint(new.value, c.result, error)
    now_ms, now = _now(ctx)
    event, data = events.finished_by_agent(c.job_id, c.run_id, c.agent_id, new, c.result, error, now)
    tx = ctx.tx()
    agents.require_active(tx, ctx.org_id, c.agent_id)
    tx.update("run", store.end_run_update(ctx.org_id, c.job_id, c.run_id, now_ms, agent_id=c.agent_id))
    tx.update("job", store.complete_job_update(ctx.org_id, c.job_id, c.run_id, new, now, c.result, error,
                                               fingerprint))
    tx.emit(event, data, agent_id=c.agent_id)
    try:
        _retry_conflicts(tx.commit)
    except TxFailed:
        job, _run = store.get_job_and_run(ctx.org_id, c.job_id)
        if (job is not None and job.run_id == c.run_id and job.completion == fingerprint
                and job.claimed_by == c.agent_id):
            return None  # the same completion again: a no-op
        raise _not_running(ctx, c.job_id, c.run_id, c.agent_id) from None
    return None


# --- the lease check (jobs queue consumer: leases.py) ---------------------------------

@dataclass(frozen=True)
class CheckRun:
    job_id: str
    run_id: str
    rearm: bool = True  # False (the sweep): a live run sends no new timer


def check_run(ctx: Ctx, command: CheckRun) -> Action:
    """Judge run `run_id` of a job from its stored state and act (rules.decide); returns what it did.

    Every transition is conditional on the state judged, so a message delivered
    twice, late, or for a finished run is harmless."""
    job_id, run_id = command.job_id, command.run_id
    for attempt in range(CHECK_ATTEMPTS):
        run = store.get_run(ctx.org_id, job_id)
        now_ms = int(ctx.now() * 1000)
        decision = rules.decide(run, run_id, now_ms)
        heartbeat = None
        if run is not None and decision.action is Action.NEED_HEARTBEAT:
            heartbeat = agents.heartbeat_of(ctx.org_id, run.claimed_by)
            decision = rules.decide(run, run_id, now_ms, heartbeat, heartbeat_known=True)
        if decision.action is Action.DROP:
            return decision.action
        if decision.action is Action.REARM:
            assert decision.due_ms is not None
            if command.rearm:
                store.send_checks([(rules.check_message(ctx.org_id, job_id, run_id),
                                  rules.delay_seconds(decision.due_ms, now_ms))])
            return decision.action
        assert run is not None  # decide() drops a missing run
        try:
            _transition(ctx, decision.action, run, heartbeat, now_ms)
            return decision.action
        except (TxFailed, TransactionConflict):
            # The run changed under us (progress, heartbeat, completion, cancel): judge it again.
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
    raise RuntimeError(f"lease check of job {job_id} run {run_id} kept racing; SQS will retry it")


def _transition(ctx: Ctx, action: Action, run: JobRun, heartbeat: int | None, now_ms: int) -> None:
    org_id, job_id, run_id = ctx.org_id, run.job_id, run.run_id
    now_iso = ctx.iso(now_ms / 1000)
    tx = ctx.tx()
    if action is Action.REQUEUE:
        tx.update("job", store.requeue_job_update(run, now_iso))
        tx.delete("run", store.requeue_run_delete(run))
        agents.require_heartbeat_unchanged(tx, org_id, run.claimed_by, heartbeat)
        tx.emit(events.QUEUED, events.requeued(run, rules.LEASE_EXPIRED, now_iso), agent_id=run.agent_id)
    elif action in (Action.FAIL_LEASE, Action.FAIL_TIMEOUT):
        lease = action is Action.FAIL_LEASE
        error = {"code": rules.LEASE_EXPIRED if lease else rules.TIMED_OUT,
                 "message": "no progress or heartbeat within the lease, on the last attempt" if lease
                 else "the run passed its timeoutSeconds"}
        tx.update("run", store.end_run_update(org_id, job_id, run_id, now_ms,
                                              renewed_ms=run.renewed_ms if lease else None))
        tx.update("job", store.finish_job_update(org_id, job_id, run.target, run.order_key, Status.FAILED, now_iso,
                                                 expect=Status.RUNNING, run_id=run_id, error=error))
        if lease:
            agents.require_heartbeat_unchanged(tx, org_id, run.claimed_by, heartbeat)
        tx.emit(events.FAILED, events.lease_failed(run, error, now_iso), agent_id=run.event_agent)
    else:  # pragma: no cover - decide() returns nothing else here
        raise AssertionError(action)
    tx.commit()
    observability.count("LeasesExpired" if action is not Action.FAIL_TIMEOUT else "RunsTimedOut")
    log.info("job %s run %s: %s", job_id, run_id, action.value)


def sweep(ctx: Ctx) -> dict[str, int]:
    """Check every RUNNING job of every organization now; returns how many ended in each action.

    The delayed SQS checks are the timers; this catches a run whose timer was
    lost anyway (a message dropped after maxReceiveCount, a local stack killed
    before it saved the message). It applies the same rules.decide and the same
    conditional transitions, so racing a check or a completion is harmless; it
    never re-arms (a live run keeps the timer it has, or gets looked at again on
    the next sweep), so it adds no messages. Cost: one GSI2 Query per
    organization, one GetItem per RUNNING job (plus the agent's heartbeat when a
    lease looks over).
    """
    from chalicelib.orgs import service as orgs  # the schedule's path only

    counts: dict[str, int] = {}
    for org_id in orgs.org_ids(ctx):
        org_ctx = ctx.for_org(org_id)
        for job in store.running_jobs(org_id):
            if not job.run_id:
                continue
            try:
                action = check_run(org_ctx, CheckRun(job.job_id, job.run_id, rearm=False)).value
            except RuntimeError:  # kept racing live progress: the run is alive, the next sweep looks again
                action = "raced"
            counts[action] = counts.get(action, 0) + 1
    log.info("lease sweep: %s", counts or "no running jobs")
    return counts
