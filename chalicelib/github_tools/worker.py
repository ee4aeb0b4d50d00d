"""The GitHub tools' retry queue consumer: invocations GitHub rate-limited, due again.

A message is the invocation itself (service.py `spec`, attempt n+1), sent with GitHub's wait
as its SQS delay, or an approved run the stream reader handed over. A run is claimed once
(store.claim_invocation, a lease), so a message delivered twice runs once. A record that raises
(DynamoDB or S3 unavailable), or whose invocation another run holds the lease of, is reported
failed and redelivered after the queue's visibility timeout (120 s, longer than a lease: the
redelivery finds the outcome recorded, or the lease expired and takes the run over); the queue's
redrive sends it to the dead-letter queue at last. Every answer is a partial batch response, also
when every record failed (Lambda then redelivers exactly those).
"""
from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.github_tools import service

log = logging.getLogger(__name__)


def _record(record: SQSRecord) -> None:
    try:
        outcome = service.retry_record(record.body)
    except (ValueError, KeyError, TypeError) as e:
        log.error("dropped an unreadable github-tools message %s: %s", record.message_id, type(e).__name__)
        return
    except service.LeaseHeld as held:
        log.info("github tool retry %s: %s; redelivered after the visibility timeout", record.message_id, held)
        raise
    log.info("github tool retry %s: %s", record.message_id, outcome)


def handle_batch(event: dict[str, Any], context: Any = None) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
