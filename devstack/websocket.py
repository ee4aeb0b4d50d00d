"""API Gateway's WebSocket side: the connections, the management API, the routes.

A connection is registered before $connect runs, in state "connecting". The
management API (post_to_connection) puts messages on the connection's outbox;
one writer task per connection drains it once the upgrade is accepted, so a
message posted while $connect is still running (the app's fan-out delivers
system:connected from a stream handler, which can win the race against the
accept) is delivered right after the accept, in order.

API Gateway's two time limits are enforced too: a connection that received no message from its
client for WS_IDLE_TIMEOUT_SECONDS (default 600: the 10-minute idle timeout; frames the server
sends do not count, pings from the client do) or that has been open for WS_MAX_CONNECTION_SECONDS
(default 7200: the 2-hour cap) is closed with 1001 "Going Away" and $disconnect runs, as API
Gateway does. Tests shorten both to prove that clients ping and reconnect.

Everything here runs on the server's event loop; handler calls go to the
Lambdas thread pool.
"""
from __future__ import annotations

import asyncio
import http
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from devstack import events
from devstack.lambdas import Lambdas

log = logging.getLogger("devstack")

Send = Any  # the ASGI send callable
Receive = Any  # the ASGI receive callable

_CLOSE = object()  # outbox sentinel: close the WebSocket
DEFAULT_IDLE_TIMEOUT_SECONDS = 600.0
DEFAULT_MAX_CONNECTION_SECONDS = 7200.0
# What API Gateway's $disconnect carries when it closes a connection itself (idle or at the cap).
GOING_AWAY = (1001, "Going away")
_INTERNAL_ERROR = b'{"message": "Internal server error"}'


@dataclass
class Connection:
    id: str
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)
    # Only the client's messages keep a connection from going idle (monotonic clock: the limits).
    opened_monotonic: float = field(default_factory=time.monotonic)
    last_client_message_monotonic: float = field(default_factory=time.monotonic)
    closed_by_gateway: tuple[int, str] | None = None  # set when a limit closed it: $disconnect's code
    state: str = "connecting"  # -> "open" -> "closing" (DELETE) -> "closed"
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)

    @property
    def connected_at_ms(self) -> int:
        return int(self.connected_at * 1000)

    def info(self) -> dict[str, Any]:
        """The GetConnection response body."""
        return {
            "connectedAt": _iso(self.connected_at),
            "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent},
            "lastActiveAt": _iso(self.last_active_at),
        }


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    value = float(raw)
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


class WebSocketGateway:
    def __init__(self, lambdas: Lambdas, domain_name: str, idle_timeout_seconds: float | None = None,
                 max_connection_seconds: float | None = None) -> None:
        self._lambdas = lambdas
        self._domain_name = domain_name
        self.idle_timeout_seconds = idle_timeout_seconds or _seconds(
            "WS_IDLE_TIMEOUT_SECONDS", DEFAULT_IDLE_TIMEOUT_SECONDS)
        self.max_connection_seconds = max_connection_seconds or _seconds(
            "WS_MAX_CONNECTION_SECONDS", DEFAULT_MAX_CONNECTION_SECONDS)
        self._connections: dict[str, Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # the server's, set by the first serve()
        # Calls from other threads wait here and reach the loop in one wake-up per batch: a fan-out
        # to 1,000 sockets was 1,000 call_soon_threadsafe (each a self-pipe write and a loop wake).
        self._pending: deque[tuple[Any, tuple[Any, ...]]] = deque()
        self._pending_lock = threading.Lock()
        self._drain_scheduled = False

    # --- management API: POST/GET/DELETE /@connections/{id} -------------------

    # Thread-safe: called on the server's loop (HTTP /@connections) and from the
    # app's fan-out threads (devstack/inprocess.py); a connection's outbox is
    # only ever touched on the loop.

    def post(self, connection_id: str, data: bytes) -> bool:
        """Queue a text frame. False when the connection is gone (410)."""
        connection = self._live(connection_id)
        if connection is None:
            return False
        self._on_loop(connection.outbox.put_nowait, data.decode("utf-8", errors="replace"))
        return True

    def info(self, connection_id: str) -> dict[str, Any] | None:
        connection = self._live(connection_id)
        return connection.info() if connection else None

    def delete(self, connection_id: str) -> bool:
        connection = self._live(connection_id)
        if connection is None:
            return False
        connection.state = "closing"
        self._on_loop(connection.outbox.put_nowait, _CLOSE)
        return True

    def _on_loop(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            fn(*args)
            return
        with self._pending_lock:  # appended in call order, so each connection's posts stay in order
            self._pending.append((fn, args))
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        loop.call_soon_threadsafe(self._drain_pending)

    def _drain_pending(self) -> None:
        with self._pending_lock:
            batch = list(self._pending)
            self._pending.clear()
            self._drain_scheduled = False
        for fn, args in batch:
            fn(*args)

    def _live(self, connection_id: str) -> Connection | None:
        connection = self._connections.get(connection_id)
        return connection if connection and connection.state in ("connecting", "open") else None

    # --- the client side: one ASGI websocket scope ------------------------------

    async def serve(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        self._loop = asyncio.get_running_loop()
        await receive()  # websocket.connect
        headers, multi_value_headers = _headers(scope)
        client = scope.get("client") or ("127.0.0.1", 0)
        connection = Connection(events.new_connection_id(), client[0], headers.get("user-agent", ""))
        request = {"headers": headers, "multi_value_headers": multi_value_headers}
        self._connections[connection.id] = connection
        try:
            status, body = await self._connect(connection, scope, request)
            if status != http.HTTPStatus.OK:
                connection.state = "closed"
                # uvicorn's "websockets" implementation supports the ASGI denial response extension.
                await send({"type": "websocket.http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json")] if body else []})
                await send({"type": "websocket.http.response.body", "body": body})
                return
            await send({"type": "websocket.accept"})
            connection.state = "open"
            writer = asyncio.create_task(self._write(connection, send), name=f"ws-writer-{connection.id}")
            limits = asyncio.create_task(self._enforce_limits(connection), name=f"ws-limits-{connection.id}")
            close_code, close_reason = 1006, "abnormal closure"
            try:
                close_code, close_reason = await self._read(connection, receive)
            finally:
                connection.state = "closed"
                writer.cancel()
                limits.cancel()
                if connection.closed_by_gateway:  # what API Gateway reports, whatever the client echoed
                    close_code, close_reason = connection.closed_by_gateway
                # Shielded: if the server cancels this task, $disconnect still runs to the end.
                await asyncio.shield(self._disconnect(connection, request, close_code, close_reason))
        finally:
            del self._connections[connection.id]

    async def _enforce_limits(self, connection: Connection) -> None:
        """Close the connection at the idle timeout or at the connection cap, whichever comes first."""
        cap = connection.opened_monotonic + self.max_connection_seconds
        while connection.state == "open":
            idle_at = connection.last_client_message_monotonic + self.idle_timeout_seconds
            deadline = min(cap, idle_at)
            now = time.monotonic()
            if now >= deadline:
                why = "connection cap" if deadline == cap else "idle timeout"
                log.info("closing %s: %s (%.0f s)", connection.id, why,
                         self.max_connection_seconds if deadline == cap else self.idle_timeout_seconds)
                connection.closed_by_gateway = GOING_AWAY
                connection.state = "closing"
                connection.outbox.put_nowait((_CLOSE, GOING_AWAY))
                return
            await asyncio.sleep(deadline - now)  # a client message meanwhile moves idle_at: loop and look again

    async def _connect(self, connection: Connection, scope: dict[str, Any],
                       request: dict[str, Any]) -> tuple[int, bytes]:
        """Run $connect: (HTTP status, refusal body). Anything but 200 refuses the upgrade."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        try:
            response = await self._call(connection, "$connect", **request, query=query)
        except Exception:
            log.exception("$connect failed for %s", connection.id)
            return 500, _INTERNAL_ERROR
        if response is None:  # the app has no $connect route: API Gateway accepts
            return 200, b""
        status = response.get("statusCode", 200)
        try:
            http.HTTPStatus(status)
        except ValueError:
            log.error("$connect returned status %r, not an HTTP status: refusing with 500", status)
            return 500, _INTERNAL_ERROR
        body = response.get("body") or b""
        return status, body.encode() if isinstance(body, str) else body

    async def _read(self, connection: Connection, receive: Receive) -> tuple[int, str]:
        """Feed text frames to $default one at a time, until the client goes. Returns the close code and reason."""
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return message.get("code", 1005), message.get("reason") or ""
            connection.last_active_at = time.time()
            connection.last_client_message_monotonic = time.monotonic()
            if message.get("text") is None:
                log.warning("ignored a binary frame on %s: only text frames are routed", connection.id)
                continue
            event = self._event(connection, "$default", body=message["text"])
            try:
                await self._invoke("$default", event)
            except Exception:
                log.exception("$default failed on %s", connection.id)
                # What API Gateway sends back on the socket when the route's Lambda fails.
                connection.outbox.put_nowait(json.dumps({
                    "message": "Internal server error",
                    "connectionId": connection.id,
                    "requestId": event["requestContext"]["requestId"],
                }))

    async def _disconnect(self, connection: Connection, request: dict[str, Any], code: int, reason: str) -> None:
        try:
            await self._call(connection, "$disconnect", **request, disconnect_status_code=code,
                             disconnect_reason=reason)
        except Exception:
            log.exception("$disconnect failed for %s", connection.id)

    async def _write(self, connection: Connection, send: Send) -> None:
        """The only sender of frames on this connection, so posts keep their order."""
        while True:
            item = await connection.outbox.get()
            try:
                if item is _CLOSE:
                    await send({"type": "websocket.close", "code": 1000})
                    return
                if isinstance(item, tuple) and item[0] is _CLOSE:  # a limit: 1001 Going Away
                    await send({"type": "websocket.close", "code": item[1][0], "reason": item[1][1]})
                    return
                await send({"type": "websocket.send", "text": item})
            except OSError:  # uvicorn's ClientDisconnected: the reader sees the disconnect
                return
            connection.last_active_at = time.time()

    async def _call(self, connection: Connection, route_key: str, **details: Any) -> dict[str, Any] | None:
        return await self._invoke(route_key, self._event(connection, route_key, **details))

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> dict[str, Any] | None:
        config = self._lambdas.app.websocket_handlers.get(route_key)
        if config is None:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._lambdas.pool, self._lambdas.invoke, config, event)

    def _event(self, connection: Connection, route_key: str, **details: Any) -> dict[str, Any]:
        return events.websocket_event(
            route_key,
            connection_id=connection.id,
            connected_at_ms=connection.connected_at_ms,
            domain_name=self._domain_name,
            source_ip=connection.source_ip,
            user_agent=connection.user_agent,
            **details,
        )


def _headers(scope: dict[str, Any]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """headers and multiValueHeaders as API Gateway builds them: a repeated header keeps its last value in the first."""
    multi: dict[str, list[str]] = {}
    for name, value in scope.get("headers", []):
        multi.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return {name: values[-1] for name, values in multi.items()}, multi


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
