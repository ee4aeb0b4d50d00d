"""The one place that talks to the API Gateway WebSocket management API.

Each connection records the endpoint it came in through
(https://{domainName}/{stage}); posts go there, or to
WEBSOCKET_ENDPOINT_OVERRIDE on the local stack. A post to a connection that
is gone answers False so the caller can forget it. `close` is the management
API's DeleteConnection: API Gateway closes the socket (and runs $disconnect).

`post` is the fan-out's hot path (one call per connection per event), so it
does what botocore's PostToConnection does minus its per-call machinery
(event hooks, parameter validation, user-agent assembly, response parsing,
and SigV4Auth's own per-call cost): `ExecuteApiSigner` signs the request
exactly as botocore's SigV4Auth would (service execute-api, the session's
credentials and region; tests/unit/test_sigv4_lean.py compares the two) with
the signing key derived once per day and each URL's canonical parts computed
once, and botocore's pooled urllib3 session sends it. A post went from
~1.4 ms (botocore client) to ~0.5 ms (SigV4Auth per post) to 0.1 to 0.25 ms
of CPU, client and the local stack's check together (bench/post_cpu.py), which is
what bounds a fan-out under one process's GIL. The wire request, the 410/413
handling and the standard retry policy are the same; `close` is rare and
stays on the botocore client.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.auth import _host_from_url
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
from botocore.httpsession import URLLib3Session

from chalicelib.aws import clients, sigv4
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
    for attempt in range(MAX_ATTEMPTS):
        try:
            response = _session().send(_signer().prepared(method, url, body))
        except HTTPClientError:
            if attempt + 1 == MAX_ATTEMPTS:
                raise
        else:
            if response.status_code not in _RETRYABLE_STATUS or attempt + 1 == MAX_ATTEMPTS:
                return response.status_code, response.headers, response.content
        time.sleep(min(random.random() * 2 ** attempt, 20))  # standard mode's full-jitter backoff
    raise AssertionError("unreachable")


class ExecuteApiSigner:
    """SigV4 for the management API, the request as botocore's `SigV4Auth` signs it, minus its per-call cost.

    botocore's signer builds HTTPHeaders, re-splits the URL and derives the
    signing key (4 HMACs) on every call; a fan-out signs one request per
    connection. This one signs the only shape `post` sends (no query; host,
    x-amz-date and the session token as headers; the body's SHA-256) with the
    session's credentials, resolved once (a refreshable set is re-read per
    request, as botocore does), and the signing key derived once per day.
    tests/unit/test_sigv4_lean.py holds its output equal to `SigV4Auth`'s.
    """

    def __init__(self, credentials: Any, region: str, service: str = "execute-api") -> None:
        self._credentials = credentials
        self._region = region
        self._service = service

    def prepared(self, method: str, url: str, body: bytes, now: float | None = None) -> AWSPreparedRequest:
        credentials = self._credentials.get_frozen_credentials()
        timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
        date = timestamp[:8]
        host, canonical_path_and_query = _url_parts(url)
        headers = {"X-Amz-Date": timestamp}
        signed = "host;x-amz-date"
        canonical_headers = f"host:{host}\nx-amz-date:{timestamp}\n"
        if credentials.token:
            headers["X-Amz-Security-Token"] = credentials.token
            signed += ";x-amz-security-token"
            canonical_headers += f"x-amz-security-token:{' '.join(credentials.token.split())}\n"
        canonical = (f"{method}\n{canonical_path_and_query}\n"
                     f"{canonical_headers}\n{signed}\n{hashlib.sha256(body).hexdigest()}")
        scope = f"{date}/{self._region}/{self._service}/aws4_request"
        key = sigv4.signing_key(credentials.secret_key, date, self._region, self._service)
        signature = sigv4.signature(key, timestamp, scope, canonical)
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}")
        headers["Content-Length"] = str(len(body))
        return AWSPreparedRequest(method, url, headers, body, stream_output=False)


# url -> (host header, canonical path + "\n" + canonical query). Every event goes to the same
# connections, so after the first one each URL is a cache hit instead of a split, quote and normalise.
@functools.lru_cache(maxsize=20_000)
def _url_parts(url: str) -> tuple[str, str]:
    split = urlsplit(url)
    return _host_from_url(url), f"{sigv4.canonical_uri(split.path)}\n{sigv4.canonical_query(split.query)}"


_signer_for: tuple[Any, ExecuteApiSigner] | None = None  # (the session it was made from, the signer)


def _signer() -> ExecuteApiSigner:
    """The signer of the shared session (a new one after clients.reset(), as tests do)."""
    global _signer_for
    session = clients.session()
    current = _signer_for
    if current is None or current[0] is not session:
        credentials = session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        current = _signer_for = (session, ExecuteApiSigner(credentials, session.region_name or "us-east-1"))
    return current[1]


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
                value: str = parsed[key]
                return value.rsplit("#", 1)[-1]
    return None
