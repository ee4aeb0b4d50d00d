"""The jobs queue consumer: delayed SQS messages are the durable lease timers.

What travels on the jobs queue (JOBS_QUEUE_URL), and nothing else:

    {"v": 1, "kind": "check-run", "orgId": "...", "jobId": "...", "runId": "..."}

sent with DelaySeconds so that it arrives when the run's lease (or timeout) is
due. A poll sends one for each job it is about to claim, *before* the claim, so
there is no moment at which a RUNNING job has no timer (a message for a claim
that then lost its race finds another runId and is dropped). Progress and
heartbeats never send anything: they only move the renewal time, and the check,
when it fires, sees that and re-arms itself for the new due time. The check
itself is a service (service.check_run): it decides from the stored state only
(rules.decide), and every transition it makes is a conditional write on that
state, so a message delivered twice, late, or for a finished run is harmless.
This module only adapts SQS records to it. See docs/JOBS.md.
"""
from __future__ import annotations

import json
from typing import Any

from typing import TYPE_CHECKING

from chalicelib.core.context import Ctx
from chalicelib.core.observability import bind_trace, logger
from chalicelib.jobs import rules, service
from chalicelib.jobs.rules import Action

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

KIND = rules.CHECK_KIND
message = rules.check_message


def check(org_id: str, job_id: str, run_id: str, rearm: bool = True) -> Action:
    """Run one check as the system actor of `org_id`; returns what it did (for logs and tests).
    `rearm=False`: a live run sends no new timer."""
    return service.check_run(Ctx.system(org_id), service.CheckRun(job_id, run_id, rearm))


def sweep() -> dict[str, int]:
    """The schedule (app.jobs_lease_sweep): the backstop to the delayed checks (service.sweep)."""
    ctx = Ctx.system()
    bind_trace(ctx.trace_id)
    return service.sweep(ctx)


def _record(record: SQSRecord) -> None:
    try:
        body = json.loads(record.body)
        if body.get("kind") != KIND:
            raise ValueError(f"unknown kind {body.get('kind')!r}")
        org_id, job_id, run_id = body["orgId"], body["jobId"], body["runId"]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        # A message no code version can handle: retrying cannot help, so it is
        # logged and dropped rather than cycled into the DLQ.
        logger.error("dropped an unreadable jobs message", extra={"messageId": record.message_id, "reason": str(e)})
        return
    bind_trace(record.message_id)  # the message id names this check in the logs
    check(org_id, job_id, run_id)


def handle_batch(event: dict[str, Any], context: Any = None) -> Any:
    """Lambda's SQS batch: every record checked; failures reported one by one (ReportBatchItemFailures)."""
    # Imported here: the API functions import this module's neighbours but never run the consumer.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS)  # per call: it holds the batch's state
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
