"""The cheapest data-plane calls that prove each dependency answers."""
from __future__ import annotations

from chalicelib.aws import dynamo, queues
from chalicelib.core.config import settings


def probe_dynamodb() -> None:
    """A GetItem of a key that never exists."""
    dynamo.get(settings().main_table, {"PK": "HEALTH", "SK": "HEALTH"})


def probe_sqs() -> None:
    """One queue attribute read."""
    queues.depth(settings().jobs_queue_url)
