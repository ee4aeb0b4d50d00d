"""The patches queue consumer: FIFO batch processing with partial failures.

What travels on the patches FIFO queue (PATCHES_QUEUE_URL), MessageGroupId = org.workspace:

    {"v": 1, "kind": "apply", "orgId", "batchId", "workspace", "traceId",
     "operations": [...]}            or, for a large batch, "ref": "<S3 key of the claim check>"

Powertools' SqsFifoPartialProcessor(skip_group_on_error=True): a record that fails is
reported (and redelivered after the visibility timeout) together with the later records of
its own message group only, so one workspace's failing batch never lets a later batch of
that workspace jump ahead, and never blocks other workspaces. service.apply_queued applies
a batch once however often it is delivered.
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
    outcome = service.apply_queued(Ctx.system(org_id, trace_id=body.get("traceId")), body)
    log.info("patch batch %s: %s", batch_id, outcome)


def handle_batch(event: dict, context: Any = None) -> PartialItemFailureResponse:
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)  # per call: it holds the batch's state
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
