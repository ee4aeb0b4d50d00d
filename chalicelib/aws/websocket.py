"""The one place that talks to the API Gateway WebSocket management API.

Each connection records the endpoint it came in through
(https://{domainName}/{stage}); posts go there, or to
WEBSOCKET_ENDPOINT_OVERRIDE on the local stack. A post to a connection that
is gone answers False so the caller can forget it. `close` is the management
API's DeleteConnection: API Gateway closes the socket (and runs $disconnect).
"""
from __future__ import annotations

import logging

from botocore.exceptions import ClientError

from chalicelib.aws import clients
from chalicelib.core.config import settings

log = logging.getLogger(__name__)


def endpoint_for(domain_name: str, stage: str) -> str:
    override = settings().websocket_endpoint_override
    if override:
        return override
    return f"https://{domain_name}/{stage}" if stage else f"https://{domain_name}"


def post(endpoint: str, connection_id: str, data: bytes) -> bool:
    """Send one message. False when the connection is gone (410)."""
    api = clients.client("apigatewaymanagementapi", endpoint_url=settings().websocket_endpoint_override or endpoint)
    try:
        api.post_to_connection(ConnectionId=connection_id, Data=data)
        return True
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code == "GoneException" or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 410:
            return False
        if code == "PayloadTooLargeException":
            log.warning("dropped a message over the WebSocket size limit for %s", connection_id)
            return True
        raise


def close(endpoint: str, connection_id: str) -> bool:
    """Close one connection (DeleteConnection). False when it was already gone (410)."""
    api = clients.client("apigatewaymanagementapi", endpoint_url=settings().websocket_endpoint_override or endpoint)
    try:
        api.delete_connection(ConnectionId=connection_id)
        return True
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code == "GoneException" or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 410:
            return False
        raise
