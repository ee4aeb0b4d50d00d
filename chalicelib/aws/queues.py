"""The one place that talks to SQS."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import clients


def send(queue_url: str, body: dict[str, Any], delay_seconds: int = 0, group_id: str | None = None,
         dedup_id: str | None = None) -> str:
    args: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": json.dumps(body, separators=(",", ":"))}
    if delay_seconds:
        args["DelaySeconds"] = max(0, min(900, int(delay_seconds)))  # SQS caps delays at 15 minutes
    if group_id:
        args["MessageGroupId"] = group_id
    if dedup_id:
        args["MessageDeduplicationId"] = dedup_id
    message_id: str = clients.client("sqs").send_message(**args)["MessageId"]
    return message_id


def send_many(queue_url: str, bodies: list[tuple[dict[str, Any], int]]) -> None:
    """(body, delay_seconds) pairs, ten per request."""
    sqs = clients.client("sqs")
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(body, separators=(",", ":")),
             **({"DelaySeconds": max(0, min(900, int(delay)))} if delay else {})}
            for i, (body, delay) in enumerate(bodies[start:start + 10])
        ]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
        if failed:
            raise RuntimeError(f"SQS refused {len(failed)} messages: {failed[0].get('Message')}")


def depth(queue_url: str) -> int:
    attrs = clients.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0))


def peek(queue_url: str, limit: int = 10) -> list[dict[str, Any]]:
    """Up to `limit` (<= 10) messages without consuming them (visibility timeout 0: they stay
    visible to everyone else): [{messageId, body, sentAtMs}]."""
    response = clients.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=max(1, min(10, limit)), VisibilityTimeout=0,
        WaitTimeSeconds=0, AttributeNames=["SentTimestamp"])
    return [{"messageId": m["MessageId"], "body": m.get("Body", ""),
             "sentAtMs": int(m.get("Attributes", {}).get("SentTimestamp", 0))}
            for m in response.get("Messages", [])]
