"""The one port of the local stack, as an ASGI app served by uvicorn.

    /ws                                   WebSocket: API Gateway WebSocket API -> $connect/$default/$disconnect
    POST|GET|DELETE /@connections/{id}    API Gateway management API (what apigatewaymanagementapi calls)
    GET  /_local/schedules                [{name, expression, nextFireAt}] of every app.schedule (loopback only)
    POST /_local/schedules/{name}/run     run that schedule's handler now: {name, ok, durationMs, error?} (loopback only)
    POST /_cognito/                       the embedded Cognito's public calls (InitiateAuth, ...): the console's sign-in
    OPTIONS anything else                 CORS preflight: 204 with the Access-Control-Allow-* headers
    anything else                         REST API through Chalice's LocalGateway (authorizers included)

Paths are routed on the raw (still percent-encoded) path: boto3 encodes the
connection id, which may contain '/', and '@' may arrive as %40.

No softer than AWS: /@connections requires SigV4 with the stack's own
credentials (devstack/sigv4.py); a body over the limit (MAX_BODY_BYTES, the
contract's 256 KiB) is refused with 413 from its Content-Length or, without
one, as soon as the streamed bytes pass the limit: never held in memory. The
413 is written at once, whole, and the rest of the body is then read and
discarded (bounded: DRAIN_MAX_BYTES, DRAIN_SECONDS) before the connection
closes: closing with unread bytes makes the kernel reset the connection, and a
client still sending (http.client, curl) then sees the reset, not the 413.
An unknown path or a dot segment is 404 NOT_FOUND in the contract's shape;
what the HTTP parser itself refuses is answered by devstack/http_protocol.py.
"""
from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import json
import logging
import os
import time
from typing import Any
from urllib.parse import unquote

from chalice.config import Config
from chalice.local import LocalGatewayException

from devstack.cognito import SignIn
from devstack.lambdas import Lambdas
from devstack.pumps import Scheduler
from devstack import inprocess
from devstack.sigv4 import SigV4Verifier
from devstack.tls import ClientCertGateway, client_cert_of
from devstack.websocket import WebSocketGateway

log = logging.getLogger("devstack")

Headers = list[tuple[bytes, bytes]]
Response = tuple[int, Headers, bytes]

_JSON = [(b"content-type", b"application/json")]
# The management API's own limit: API Gateway's 128 KB WebSocket message.
MANAGEMENT_MAX_BODY_BYTES = 128 * 1024
# After a 413: what is read and thrown away at most so that the client receives the answer. A
# declared Content-Length above DRAIN_MAX_BYTES is not drained at all (that client may see a reset).
DRAIN_MAX_BYTES = 128 * 1024 * 1024
DRAIN_SECONDS = 15.0


def _error(status: int, code: str, message: str, headers: Headers | None = None) -> Response:
    return status, [*_JSON, *(headers or [])], json.dumps({"error": {"code": code, "message": message}}).encode()


class BodyTooLarge(Exception):
    def __init__(self, drain: bool) -> None:
        super().__init__()
        self.drain = drain  # whether the rest of the body is worth reading (and throwing away)


class DevstackApp:
    def __init__(self, lambdas: Lambdas, websockets: WebSocketGateway, scheduler: Scheduler,
                 sign_in: SignIn | None = None) -> None:
        self._lambdas = lambdas
        self._sign_in = sign_in  # the embedded Cognito's public calls at /_cognito/ (devstack/cognito.py)
        self._websockets = websockets
        self._scheduler = scheduler
        # LocalGateway that also hands the app the TLS port's client certificate (devstack/tls.py).
        self._gateway = ClientCertGateway(lambdas.app, Config())
        self._verifier = SigV4Verifier(os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                                       os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
        self._max_body = int(os.environ.get("MAX_BODY_BYTES", 256 * 1024))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            if scope["path"] == "/ws":
                await self._websockets.serve(scope, receive, send)
            else:
                await send({"type": "websocket.http.response.start", "status": 404, "headers": _JSON})
                await send({"type": "websocket.http.response.body", "body": b'{"message": "WebSockets are at /ws"}'})

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        segments = [unquote(segment) for segment in raw_path.split("/")]
        method = scope["method"]
        management = len(segments) == 3 and segments[1] == "@connections"
        limit = MANAGEMENT_MAX_BODY_BYTES if management else self._max_body
        try:
            body = await _read_body(scope, receive, limit)
        except BodyTooLarge as refused:
            status, headers, payload = _error(413, "PAYLOAD_TOO_LARGE", f"request body is over {limit} bytes",
                                              [(b"connection", b"close")])
            await _respond_then_drain(send, receive, status, headers, payload, refused.drain)
            return
        try:
            if management:
                status, headers, payload = self._authorized_management(scope, raw_path, method, segments[2], body)
            elif any(segment in (".", "..") for segment in segments):
                status, headers, payload = _error(404, "NOT_FOUND", "no such path")
            elif segments[1] == "_cognito" and self._sign_in is not None and len(segments) <= 3:
                status, headers, payload = await self._cognito(scope, method, body)
            elif segments[1] == "_local":
                status, headers, payload = await self._local(scope, method, segments[2:])
            else:
                status, headers, payload = await self._rest(scope, raw_path, body)
        except Exception:
            log.exception("%s %s failed", method, raw_path)
            status, headers = 500, _JSON
            payload = b'{"error": {"code": "INTERNAL", "message": "internal error"}}'
        await _respond(send, status, headers, payload)

    # --- API Gateway management API ---------------------------------------------

    def serve_in_process(self, public_url: str) -> None:
        """The app's own management API calls skip the TCP hop, not the SigV4 check (devstack/inprocess.py)."""
        inprocess.install(public_url, self._verifier, self._management)

    def _authorized_management(self, scope: dict[str, Any], raw_path: str, method: str, connection_id: str,
                               body: bytes) -> Response:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        refused = self._verifier.verify(method, raw_path, scope.get("query_string", b"").decode("latin-1"),
                                        headers, body)
        if refused is not None:
            log.warning("refused an unsigned or wrongly signed %s /@connections request", method)
            return 403, [*_JSON, (b"x-amzn-errortype", b"ForbiddenException")], json.dumps(
                {"message": refused}).encode()
        return self._management(method, connection_id, body)

    def _management(self, method: str, connection_id: str, body: bytes) -> Response:
        if method not in ("POST", "GET", "DELETE"):
            return 405, _JSON, b'{"message": "use POST, GET or DELETE"}'
        if method == "POST" and self._websockets.post(connection_id, body):
            return 200, [], b""
        if method == "GET" and (info := self._websockets.info(connection_id)) is not None:
            return 200, _JSON, json.dumps(info).encode()
        if method == "DELETE" and self._websockets.delete(connection_id):
            return 204, [], b""
        # botocore maps the x-amzn-ErrorType header to client.exceptions.GoneException.
        return (410, [*_JSON, (b"x-amzn-errortype", b"GoneException")],
                json.dumps({"message": f"connection {connection_id} is gone"}).encode())

    # --- the embedded Cognito's public API: the console signs people in here --------------------

    async def _cognito(self, scope: dict[str, Any], method: str, body: bytes) -> Response:
        assert self._sign_in is not None
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        return await asyncio.get_running_loop().run_in_executor(self._lambdas.pool, self._sign_in.handle,
                                                                method, headers, body)

    # --- local-only endpoints (never on AWS: the app does not define them) -----------

    async def _local(self, scope: dict[str, Any], method: str, rest: list[str]) -> Response:
        client = (scope.get("client") or ("",))[0]
        if not _is_loopback(client):
            return _error(403, "FORBIDDEN", "the local endpoints answer loopback clients only")
        if rest == ["schedules"]:
            if method != "GET":
                return _error(405, "METHOD_NOT_ALLOWED", "use GET")
            return 200, _JSON, json.dumps(self._scheduler.describe()).encode()
        if len(rest) == 3 and rest[0] == "schedules" and rest[2] == "run":
            if method != "POST":
                return _error(405, "METHOD_NOT_ALLOWED", "use POST")
            name = rest[1]
            if name not in self._scheduler.handlers:
                return _error(404, "NOT_FOUND", f"no schedule named {name}")
            started = time.perf_counter()
            answer: dict[str, Any] = {"name": name, "ok": True}
            try:
                await asyncio.get_running_loop().run_in_executor(self._lambdas.pool, self._scheduler.run_now, name)
            except Exception as error:
                log.exception("scheduled handler %s failed", name)
                answer.update(ok=False, error=f"{type(error).__name__}: {error}")
            answer["durationMs"] = round((time.perf_counter() - started) * 1000, 1)
            return 200, _JSON, json.dumps(answer).encode()
        return _error(404, "NOT_FOUND", "unknown local endpoint")

    # --- REST through Chalice's local API Gateway ---------------------------------

    async def _rest(self, scope: dict[str, Any], raw_path: str, body: bytes) -> Response:
        query = scope.get("query_string", b"").decode("latin-1")
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
        # The raw path, as `chalice local` passes it: path parameters arrive still percent-encoded.
        handle = functools.partial(self._gateway.handle_request_with_cert, client_cert_of(scope), method=scope["method"],
                                   path=raw_path + (f"?{query}" if query else ""), headers=headers, body=body or None)
        try:
            response = await asyncio.get_running_loop().run_in_executor(self._lambdas.pool, handle)
        except LocalGatewayException as error:  # authorizer refusals, unknown routes
            if b"Missing Authentication Token" in (error.body or b"") or b"Credential" in (error.body or b""):
                # Chalice's stand-in for API Gateway's unknown-route answer: the
                # contract (and the packaged template's gateway responses) say 404.
                return _error(404, "NOT_FOUND", "no such path")
            return error.CODE, _header_list(error.headers), error.body or b""
        payload = response.get("body")
        if payload is None:
            payload = b""
        elif response.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        elif isinstance(payload, str):
            payload = payload.encode("utf-8")
        headers_out = _header_list(response.get("headers", {}), response.get("multiValueHeaders", {}))
        status = response["statusCode"]
        if scope["method"] == "OPTIONS" and status == 200 and not payload:
            # LocalGateway answers Chalice's generated preflight with 200; the packaged
            # API answers 204 (infra/package.py), and so does the contract.
            status = 204
            headers_out = [(name, value) for name, value in headers_out if name != b"content-type"]
        return status, headers_out, payload


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _header_list(headers: dict[str, str], multi_value: dict[str, list[str]] | None = None) -> Headers:
    """Response headers for ASGI; Content-Type defaults to JSON as in `chalice local`; we set Content-Length."""
    pairs = [(name, value) for name, value in headers.items()]
    pairs += [(name, value) for name, values in (multi_value or {}).items() for value in values]
    encoded = [(name.lower().encode("latin-1"), str(value).encode("latin-1")) for name, value in pairs
               if name.lower() != "content-length"]
    if not any(name == b"content-type" for name, _ in encoded):
        encoded.append((b"content-type", b"application/json"))
    return encoded


async def _respond(send: Any, status: int, headers: Headers, payload: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


async def _read_body(scope: dict[str, Any], receive: Any, limit: int) -> bytes:
    """The request body, or BodyTooLarge as soon as Content-Length or the bytes so far pass `limit`."""
    headers = {name.lower(): value for name, value in scope.get("headers", [])}
    # A client that asked `Expect: 100-continue` sends no body before an answer: nothing to drain
    # (and reading would make the server invite the body with a 100 after its final answer).
    expects = headers.get(b"expect", b"").lower() == b"100-continue"
    if b"content-length" in headers:
        try:
            declared = int(headers[b"content-length"])  # the HTTP parser let only digits through
        except ValueError:
            declared = 0
        if declared > limit:
            raise BodyTooLarge(drain=not expects and declared <= DRAIN_MAX_BYTES)
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(drain=message.get("more_body", False))
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond_then_drain(send: Any, receive: Any, status: int, headers: Headers, payload: bytes,
                              drain: bool) -> None:
    """Write the whole answer now; then read and discard the body the client is still sending (bounded),
    and only then end the response, which closes the connection (`connection: close`).

    The answer's bytes go out with more_body=True: the server still reads the request until the
    response is complete (uvicorn's receive() answers http.disconnect after that), yet the client has
    the full answer (its Content-Length says so) and can act on it at once."""
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload, "more_body": drain})
    if not drain:
        return
    deadline, drained = time.monotonic() + DRAIN_SECONDS, 0
    try:
        while drained <= DRAIN_MAX_BYTES:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            if message["type"] == "http.disconnect":
                break
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
    except TimeoutError:
        log.info("stopped draining a refused body after %d bytes and %.0f s", drained, DRAIN_SECONDS)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
