"""The patches queue consumer: FIFO batch processing with partial failures.

What travels on the patches FIFO queue (PATCHES_QUEUE_URL), MessageGroupId = org.workspace:

    {"v": 1, "kind": "apply", "orgId", "batchId", "workspace", "traceId",
     "operations": [...]}            or, for a large batch, "ref": "<S3 key of the claim check>"

Powertools' SqsFifoPartialProcessor(skip_group_on_error=True): a record that fails is
reported (and redelivered after the visibility timeout) together with the later records of
its own message group only, so one workspace's failing batch never lets a later batch of
that workspace jump ahead, and never blocks other workspaces. service.apply_queued applies
a batch once however often it is delivered.

A batch can never wedge its workspace: what the engine raises fails the batch at once (a pure
function raises again on every delivery); anything else (S3 or DynamoDB unavailable, a crash
mid-commit) is retried by redelivery, and its MAX_DELIVERIES-th delivery finishes the batch
`failed` with the error (or `applied` when its commit had happened) and acknowledges the message,
so the next batch of the group runs. Only when even that cannot be written does the message go
to the dead-letter queue.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.core.context import Ctx
from chalicelib.patches import service

log = logging.getLogger(__name__)
# infra/template.yaml PatchesQueue maxReceiveCount: the delivery that fails this many times
# finishes its batch `failed` (service.fail_queued) instead of leaving it to the dead-letter queue
MAX_DELIVERIES = 3


def _record(record: SQSRecord) -> None:
    try:
        body = json.loads(record.body)
        if body.get("kind") != "apply":
            raise ValueError(f"unknown kind {body.get('kind')!r}")
        org_id, batch_id = body["orgId"], body["batchId"]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        # No code version can handle it: logged and dropped, not cycled into the DLQ.
        log.error("dropped an unreadable patches message %s: %s", record.message_id, e)
        return
    ctx = Ctx.system(org_id, trace_id=body.get("traceId"))
    try:
        outcome = service.apply_queued(ctx, body)
    except Exception as error:
        deliveries = _deliveries(record)
        if deliveries < MAX_DELIVERIES:
            raise  # reported failed: SQS redelivers it (and the later batches of its group) after the visibility timeout
        log.exception("patch batch %s failed on its delivery %d of %d: finishing it failed", batch_id, deliveries,
                      MAX_DELIVERIES)
        outcome = service.fail_queued(ctx, {**body, "_deliveries": deliveries}, error)
    log.info("patch batch %s: %s", batch_id, outcome)


def _deliveries(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count)
    except (TypeError, ValueError, KeyError):
        return 1


def handle_batch(event: dict[str, Any], context: Any = None) -> PartialItemFailureResponse:
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)  # per call: it holds the batch's state
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
