"""The one place that talks to the API Gateway WebSocket management API.

Each connection records the endpoint it came in through
(https://{domainName}/{stage}); posts go there, or to
WEBSOCKET_ENDPOINT_OVERRIDE on the local stack. A post to a connection that
is gone answers False so the caller can forget it. `close` is the management
API's DeleteConnection: API Gateway closes the socket (and runs $disconnect).

`post` is the fan-out's hot path (one call per connection per event), so it
does what botocore's PostToConnection does minus its per-call machinery
(event hooks, parameter validation, user-agent assembly, response parsing):
botocore's own SigV4Auth signs a prepared AWSRequest (service execute-api,
the session's credentials and region) and botocore's pooled urllib3 session
sends it. That took a post from ~1.4 ms to ~0.3 ms of CPU (bench/post_cpu.py),
which is what bounds a fan-out under one process's GIL. The wire request,
the 410/413 handling and the standard retry policy are the same; `close` is
rare and stays on the botocore client.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError, HTTPClientError
from botocore.httpsession import URLLib3Session

from chalicelib.aws import clients, deferred
from chalicelib.core.config import settings

log = logging.getLogger(__name__)

# As clients._CONFIG: retries "standard" with 3 attempts, 64 pooled connections, timeouts 3 s / 10 s.
MAX_ATTEMPTS = 3
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_lock = threading.Lock()
_http: URLLib3Session | None = None


def endpoint_for(domain_name: str, stage: str) -> str:
    override = settings().websocket_endpoint_override
    if override:
        return override
    return f"https://{domain_name}/{stage}" if stage else f"https://{domain_name}"


def post(endpoint: str, connection_id: str, data: bytes) -> bool:
    """Send one message. False when the connection is gone (410)."""
    deferred._after_write_guard()  # the same guard botocore's before-call hook applies to every AWS call
    base = (settings().websocket_endpoint_override or endpoint).rstrip("/")
    url = f"{base}/@connections/{quote(connection_id, safe='')}"
    status, headers, body = _send_signed("POST", url, data)
    if 200 <= status < 300:
        return True
    if status == 410:
        return False
    error = (headers.get("x-amzn-errortype") or "").split(":", 1)[0] or _error_code(body)
    if status == 413 or error == "PayloadTooLargeException":
        log.warning("dropped a message over the WebSocket size limit for %s", connection_id)
        return True
    raise ClientError({"Error": {"Code": error or str(status), "Message": body.decode("utf-8", "replace")[:500]},
                       "ResponseMetadata": {"HTTPStatusCode": status}}, "PostToConnection")


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


def _send_signed(method: str, url: str, body: bytes) -> tuple[int, Any, bytes]:
    """(status, headers, body) of one SigV4-signed request, retried like botocore's standard mode."""
    session = clients.session()
    credentials = session.get_credentials().get_frozen_credentials()
    region = session.region_name or "us-east-1"
    for attempt in range(MAX_ATTEMPTS):
        request = AWSRequest(method=method, url=url, data=body)
        SigV4Auth(credentials, "execute-api", region).add_auth(request)
        try:
            response = _session().send(request.prepare())
        except HTTPClientError:
            if attempt + 1 == MAX_ATTEMPTS:
                raise
        else:
            if response.status_code not in _RETRYABLE_STATUS or attempt + 1 == MAX_ATTEMPTS:
                return response.status_code, response.headers, response.content
        time.sleep(min(random.random() * 2 ** attempt, 20))  # standard mode's full-jitter backoff
    raise AssertionError("unreachable")


def _session() -> URLLib3Session:
    global _http
    if _http is None:
        with _lock:
            if _http is None:
                _http = URLLib3Session(max_pool_connections=64, timeout=(3, 10))
    return _http


def _error_code(body: bytes) -> str | None:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return None
    if isinstance(parsed, dict):
        for key in ("__type", "code", "Code"):
            if isinstance(parsed.get(key), str):
                return parsed[key].rsplit("#", 1)[-1]
    return None
