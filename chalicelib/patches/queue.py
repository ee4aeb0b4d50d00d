"""The patches domain's queue and its claim checks: the AWS boundaries beside its store.

  send_batch          the worker's message for a batch, on the patches FIFO queue
  put_claim_check     a batch too large for a message, parked in the workspace bucket at
                      orgs/{org}/batches/{batchId}.json; the message carries only that key
  get_claim_check     the worker fetching it back (None: gone)

The claim checks share the workspace bucket (one bucket to provision) but not its layout's
meaning: they belong to the patches queue, so they live here, not in the workspaces domain.
"""
from __future__ import annotations

from typing import Any

from chalicelib.aws import blobs, queues
from chalicelib.core.config import settings


def send_batch(queue_url: str, message: dict[str, Any], group_id: str, dedup_id: str) -> None:
    """The worker's message for a batch, on the patches FIFO queue."""
    queues.send(queue_url, message, group_id=group_id, dedup_id=dedup_id)


def claim_check_key(org_id: str, batch_id: str) -> str:
    return f"orgs/{org_id}/batches/{batch_id}.json"


def put_claim_check(org_id: str, batch_id: str, body: bytes) -> str:
    """Store a large batch for the worker; returns the key its message carries."""
    key = claim_check_key(org_id, batch_id)
    blobs.put(settings().workspace_bucket, key, body, content_type="application/json")
    return key


def get_claim_check(key: str) -> bytes | None:
    found = blobs.get(settings().workspace_bucket, key)
    return found.data if found else None
