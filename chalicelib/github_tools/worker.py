"""The GitHub tools' retry queue consumer: invocations GitHub rate-limited, due again.

A message is the invocation itself (service.py `spec`, attempt n+1), sent with GitHub's wait
as its SQS delay. A run is claimed once (store.claim_invocation), so a message delivered twice
runs once. A record that raises (DynamoDB or S3 unavailable) is reported failed and redelivered
after the visibility timeout; the queue's redrive sends it to the dead-letter queue at last.
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
    log.info("github tool retry %s: %s", record.message_id, outcome)


def handle_batch(event: dict[str, Any], context: Any = None) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
