"""The fan-out's one AWS boundary beside its store: API Gateway's management API.

fanout.py and handlers.py decide who gets what; this module is how a frame reaches a socket
(post, 410 -> False), how one is closed, and the management endpoint of a connection's API.
Calls go through `chalicelib.aws.websocket` at call time (tests swap its functions).
"""
from __future__ import annotations

from typing import Any

from chalicelib.aws import websocket


def post(endpoint: str, connection_id: str, message: bytes) -> bool:
    """Send one frame; False when the connection is gone (410)."""
    return websocket.post(endpoint, connection_id, message)


def close(endpoint: str, connection_id: str) -> bool:
    """Close one connection; False when it was already gone."""
    return websocket.close(endpoint, connection_id)


def endpoint_for(domain_name: str, stage: str) -> str:
    """The management API endpoint of the WebSocket API a request came in on."""
    return websocket.endpoint_for(domain_name, stage)


def stream_image(image: dict[str, Any]) -> dict[str, Any]:
    """An outbox stream record's NEW_IMAGE (DynamoDB's typed attribute values) as a plain item."""
    from chalicelib.aws import dynamo

    return dynamo.deserialize_item(image)
