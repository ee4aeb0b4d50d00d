"""Lambda event payloads, shaped as AWS delivers them to a function.

Pure functions from what the local services return (boto3 responses from
moto, WebSocket connection facts) to the event dicts the app's handlers get
on AWS, so the handlers cannot tell the local stack from the real one.
"""
from __future__ import annotations

import base64
import os
import uuid
from datetime import datetime, timezone
from typing import Any

# --- SQS --------------------------------------------------------------------


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS poller builds from a ReceiveMessage batch (AttributeNames/MessageAttributeNames All)."""
    region = queue_arn.split(":")[3]
    return {"Records": [_sqs_record(message, queue_arn, region) for message in messages]}


def _sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        # ApproximateReceiveCount, SentTimestamp, SenderId, ApproximateFirstReceiveTimestamp
        # and, on FIFO queues, SequenceNumber, MessageGroupId, MessageDeduplicationId.
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _sqs_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _sqs_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    # The SQS API says StringValue/BinaryValue; Lambda's event uses lower camel
    # case, always carries the (unused) list fields and base64-encodes binaries.
    converted: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted


# --- DynamoDB Streams --------------------------------------------------------


def dynamodb_event(records: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """The event Lambda builds from a GetRecords batch (records as boto3 returns them)."""
    return {"Records": [_dynamodb_record(record, stream_arn) for record in records]}


def _dynamodb_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    stream = record["dynamodb"]
    converted: dict[str, Any] = {
        # boto3 parses this timestamp into a datetime; Lambda sends epoch seconds.
        "ApproximateCreationDateTime": int(stream["ApproximateCreationDateTime"].timestamp()),
        "Keys": _attribute_map(stream["Keys"]),
    }
    for image in ("NewImage", "OldImage"):
        if image in stream:
            converted[image] = _attribute_map(stream[image])
    converted.update(
        SequenceNumber=stream["SequenceNumber"], SizeBytes=stream["SizeBytes"], StreamViewType=stream["StreamViewType"]
    )
    lambda_record = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        # moto reports 1.0; Lambda delivers 1.1.
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": record["awsRegion"],
        "dynamodb": converted,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:  # TTL deletions
        lambda_record["userIdentity"] = record["userIdentity"]
    return lambda_record


def _attribute_map(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _attribute_value(value) for name, value in item.items()}


def _attribute_value(value: dict[str, Any]) -> dict[str, Any]:
    # boto3 decodes B and BS to bytes; the Lambda event carries them base64-encoded.
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode("ascii")}
    if kind == "BS":
        return {"BS": [base64.b64encode(member).decode("ascii") for member in inner]}
    if kind == "M":
        return {"M": _attribute_map(inner)}
    if kind == "L":
        return {"L": [_attribute_value(member) for member in inner]}
    return {kind: inner}


# --- EventBridge schedules -----------------------------------------------------


def scheduled_event(rule_arn: str, fired_at: datetime) -> dict[str, Any]:
    """The event an EventBridge schedule rule sends to its target."""
    _, _, _, region, account, _ = rule_arn.split(":", 5)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": fired_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


# --- API Gateway WebSocket -------------------------------------------------------


def websocket_event(
    route_key: str,
    *,
    connection_id: str,
    connected_at_ms: int,
    domain_name: str,
    source_ip: str,
    user_agent: str,
    headers: dict[str, str] | None = None,
    multi_value_headers: dict[str, list[str]] | None = None,
    query: dict[str, list[str]] | None = None,
    body: str | None = None,
    disconnect_status_code: int | None = None,
    disconnect_reason: str = "",
) -> dict[str, Any]:
    """An API Gateway WebSocket proxy event for $connect, $default or $disconnect.

    As API Gateway does: CONNECT and DISCONNECT carry the upgrade request's
    headers, CONNECT also its query string, MESSAGE the frame's text (and a
    messageId), DISCONNECT the close code and reason.
    """
    now = datetime.now(timezone.utc)
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": _short_id(),
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "messageDirection": "IN",
        "stage": "local",
        "connectedAt": connected_at_ms,
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        "requestId": _short_id(),
        "domainName": domain_name,
        "connectionId": connection_id,
        "apiId": "local",
    }
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if event_type == "MESSAGE":
        context["messageId"] = _short_id()
        event["body"] = body
    else:
        event["headers"] = headers or {}
        event["multiValueHeaders"] = multi_value_headers or {}
    if event_type == "CONNECT":
        event["queryStringParameters"] = {name: values[-1] for name, values in query.items()} if query else None
        event["multiValueQueryStringParameters"] = query or None
    if event_type == "DISCONNECT":
        context["disconnectStatusCode"] = disconnect_status_code
        context["disconnectReason"] = disconnect_reason
    return event


def new_connection_id() -> str:
    """API Gateway style: base64 of 12 random bytes (may contain '/' and '+', which callers percent-encode)."""
    return base64.b64encode(os.urandom(12)).decode("ascii")


def _short_id() -> str:
    return base64.b64encode(os.urandom(9)).decode("ascii")
