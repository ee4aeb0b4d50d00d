"""Lease and timeout checks: delayed SQS messages are the durable timers.

What travels on the jobs queue (JOBS_QUEUE_URL), and nothing else:

    {"v": 1, "kind": "check-run", "orgId": "...", "jobId": "...", "runId": "..."}

sent with DelaySeconds so that it arrives when the run's lease (or timeout) is
due. A poll sends one for each job it is about to claim, *before* the claim, so
there is no moment at which a RUNNING job has no timer (a message for a claim
that then lost its race finds another runId and is dropped). Progress and
heartbeats never send anything: they only move the renewal time, and the check,
when it fires, sees that and re-arms itself for the new due time. The consumer
decides from the stored state only (rules.decide), and every transition it makes
is a conditional write on that state, so a message delivered twice, late, or
for a finished run is harmless. See docs/JOBS.md.
"""
from __future__ import annotations

import json
import logging
import random
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.agents import service as agents
from chalicelib.aws import dynamo, queues
from chalicelib.core import clock
from chalicelib.core.config import settings
from chalicelib.events.outbox import event_put
from chalicelib.jobs import rules, store
from chalicelib.jobs.rules import Action, Status

log = logging.getLogger(__name__)
KIND = "check-run"
ATTEMPTS = 4  # re-reads when a transition races with progress, a heartbeat or a completion


def message(org_id: str, job_id: str, run_id: str) -> dict:
    return {"v": 1, "kind": KIND, "orgId": org_id, "jobId": job_id, "runId": run_id}


def schedule(checks: list[tuple[dict, int]]) -> None:
    """(message, due_ms) pairs; one SQS request per ten."""
    if not checks:
        return
    now = _now_ms()
    queues.send_many(settings().jobs_queue_url, [(m, rules.delay_seconds(due, now)) for m, due in checks])


def _now_ms() -> int:
    return int(clock.now() * 1000)


def run_view(item: dict) -> rules.Run:
    return rules.Run(
        run_id=item["runId"], running=item.get("state") == store.RUNNING, claimed_by=item["claimedBy"],
        attempt=int(item["attempt"]), max_attempts=int(item["maxAttempts"]),
        lease_seconds=int(item["leaseSeconds"]), started_ms=int(item["startedMs"]),
        renewed_ms=int(item["renewedMs"]),
        deadline_ms=int(item["deadlineMs"]) if item.get("deadlineMs") is not None else None)


def event_agent(run: dict) -> str | None:
    """Whose agent-key connections see events of this job: the claiming agent."""
    return run.get("claimedBy") or run.get("jobAgentId")


def check(org_id: str, job_id: str, run_id: str, rearm: bool = True) -> Action:
    """Run one check; returns what it did (for logs and tests). `rearm=False`: a live run sends no new timer."""
    for attempt in range(ATTEMPTS):
        item = store.get_run(org_id, job_id)
        run = run_view(item) if item else None
        now = _now_ms()
        decision = rules.decide(run, run_id, now)
        heartbeat = None
        if decision.action is Action.NEED_HEARTBEAT:
            heartbeat = agents.heartbeat_of(org_id, run.claimed_by)
            decision = rules.decide(run, run_id, now, heartbeat, heartbeat_known=True)
        if decision.action is Action.DROP:
            return decision.action
        if decision.action is Action.REARM:
            if rearm:
                schedule([(message(org_id, job_id, run_id), decision.due_ms)])
            return decision.action
        try:
            _transition(decision.action, item, heartbeat, now)
            return decision.action
        except (dynamo.ConditionFailed, dynamo.TransactionConflict):
            # The run changed under us (progress, heartbeat, completion, cancel): judge it again.
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
    raise RuntimeError(f"lease check of job {job_id} run {run_id} kept racing; SQS will retry it")


def _transition(action: Action, run: dict, heartbeat: int | None, now_ms: int) -> None:
    org_id, job_id, run_id = run["orgId"], run["jobId"], run["runId"]
    now_iso = clock.iso(now_ms / 1000)
    base = {"jobId": job_id, "runId": run_id, "type": run["jobType"], "agentId": run.get("jobAgentId"),
            "pool": run.get("pool"), "attempts": int(run["attempt"]), "at": now_iso}
    if action is Action.REQUEUE:
        ops = [*store.requeue_ops(run, now_iso),
               agents.heartbeat_unchanged_check(org_id, run["claimedBy"], heartbeat),
               event_put(org_id, "job:queued", {**base, "status": Status.QUEUED.value, "reason": rules.LEASE_EXPIRED},
                         agent_id=run.get("jobAgentId"))]
    elif action in (Action.FAIL_LEASE, Action.FAIL_TIMEOUT):
        code = rules.LEASE_EXPIRED if action is Action.FAIL_LEASE else rules.TIMED_OUT
        text = ("no progress or heartbeat within the lease, on the last attempt" if action is Action.FAIL_LEASE
                else "the run passed its timeoutSeconds")
        error = {"code": code, "message": text}
        ops = [store.end_run_update(org_id, job_id, run_id, now_ms,
                                    renewed_ms=run["renewedMs"] if action is Action.FAIL_LEASE else None),
               store.finish_job_update(org_id, job_id, run["target"], run["orderKey"], Status.FAILED, now_iso,
                                       expect=Status.RUNNING, run_id=run_id, error=error)]
        if action is Action.FAIL_LEASE:
            ops.append(agents.heartbeat_unchanged_check(org_id, run["claimedBy"], heartbeat))
        ops.append(event_put(org_id, "job:failed", {**base, "status": Status.FAILED.value,
                                                    "claimedBy": run["claimedBy"], "error": error},
                             agent_id=event_agent(run)))
    else:  # pragma: no cover - decide() returns nothing else here
        raise AssertionError(action)
    dynamo.transact(ops)
    log.info("job %s run %s: %s", job_id, run_id, action.value)


# --- the sweep: a schedule, the backstop to the delayed checks ----------------------

def sweep() -> dict[str, int]:
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
    for org_id in orgs.org_ids():
        for job in store.running_jobs(org_id):
            if not job.get("runId"):
                continue
            try:
                action = check(org_id, job["jobId"], job["runId"], rearm=False).value
            except RuntimeError:  # kept racing live progress: the run is alive, the next sweep looks again
                action = "raced"
            counts[action] = counts.get(action, 0) + 1
    log.info("lease sweep: %s", counts or "no running jobs")
    return counts


# --- the SQS consumer ------------------------------------------------------------

def _record(record: SQSRecord) -> None:
    try:
        body = json.loads(record.body)
        if body.get("kind") != KIND:
            raise ValueError(f"unknown kind {body.get('kind')!r}")
        org_id, job_id, run_id = body["orgId"], body["jobId"], body["runId"]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        # A message no code version can handle: retrying cannot help, so it is
        # logged and dropped rather than cycled into the DLQ.
        log.error("dropped an unreadable jobs message %s: %s", record.message_id, e)
        return
    check(org_id, job_id, run_id)


def handle_batch(event: dict, context: Any = None) -> dict:
    """Lambda's SQS batch: every record checked; failures reported one by one (ReportBatchItemFailures)."""
    processor = BatchProcessor(event_type=EventType.SQS)  # per call: it holds the batch's state
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
