"""The app's own management API calls, served in-process: no TCP hop, the same SigV4 check.

The app posts to its stack's `/@connections` (WEBSOCKET_ENDPOINT_OVERRIDE)
with boto3, which signs the request as for API Gateway. Over HTTP each post
cost the server's event loop an accept/parse/respond, and the loop was the
one serialization point of a fan-out: with 300 sockets an event took seconds.
Here, a request botocore is about to send to exactly that URL is answered by
the gateway directly, after the same SigV4 verification the HTTP endpoint
does (devstack/sigv4.py), with the response botocore would have parsed off
the wire (200, 204, 403, 410 with x-amzn-ErrorType). Anyone else, or any
other URL, still goes over the network and through the port's checks.
"""
from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from botocore.awsrequest import AWSResponse
from botocore.httpsession import URLLib3Session
from urllib3 import HTTPHeaderDict

from devstack.sigv4 import SigV4Verifier

Management = Callable[[str, str, bytes], tuple[int, list[tuple[bytes, bytes]], bytes]]


class _Raw:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, *_: Any, **__: Any):
        yield self._payload


def install(public_url: str, verifier: SigV4Verifier, management: Management) -> Callable[[], None]:
    """Serve botocore requests to `{public_url}/@connections/...` with `management`; returns an uninstall."""
    origin = public_url.rstrip("/")
    prefix = origin + "/@connections/"
    netloc = urlsplit(origin).netloc
    original = URLLib3Session.send

    def send(session: URLLib3Session, request: Any) -> Any:
        if not request.url.startswith(prefix):
            return original(session, request)
        path, _, query = request.url[len(origin):].partition("?")
        query = query.partition("#")[0]
        body = request.body or b""
        if not isinstance(body, bytes):
            body = body.read() if hasattr(body, "read") else bytes(body)
        headers = {name.lower(): value.decode() if isinstance(value, bytes) else value
                   for name, value in request.headers.items()}
        headers.setdefault("host", netloc)
        refused = verifier.verify(request.method, path, query, headers, body)
        if refused is not None:
            status, pairs, payload = 403, [(b"x-amzn-errortype", b"ForbiddenException")], json.dumps(
                {"message": refused}).encode()
        else:
            status, pairs, payload = management(request.method, unquote(path[len("/@connections/"):]), body)
        response_headers = HTTPHeaderDict({name.decode(): value.decode() for name, value in pairs})
        response_headers["content-length"] = str(len(payload))
        return AWSResponse(request.url, status, response_headers, _Raw(payload))

    URLLib3Session.send = send  # type: ignore[method-assign]

    def uninstall() -> None:
        URLLib3Session.send = original  # type: ignore[method-assign]

    return uninstall
