"""A tiny HTTP + WebSocket client for end-to-end tests: real sockets, no app imports.

Every frame a test receives through `ws_connect` is checked against docs/asyncapi.json
(tests/support/asyncapi_events.py): an event the document does not name, or whose data
does not match its schema, fails the test at the `recv` that got it."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.support.asyncapi_events import check_frame


@dataclass
class Reply:
    status: int
    json: Any
    headers: dict[str, str]


def call(base_url: str, method: str, path: str, key: str | None = None, body: Any = None,
         headers: dict[str, str] | None = None, timeout: float = 30) -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    h = {"content-type": "application/json", **(headers or {})}
    if key:
        h["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, rh = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as e:
        status, raw, rh = e.code, e.read(), dict(e.headers)
    return Reply(status, json.loads(raw) if raw else None, rh)


class CheckedConnection(ClientConnection):
    """A client connection whose every received frame must be an event of the AsyncAPI document."""

    check_events = True

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> Any:
        frame = super().recv(timeout, decode)
        if self.check_events:
            check_frame(frame)
        return frame


def ws_connect(base_url: str, key: str | None, check_events: bool = True) -> CheckedConnection:
    """`check_events=False` only for a test that posts frames of its own through the management API."""
    url = base_url.replace("http://", "ws://", 1) + "/ws" + (f"?token={key}" if key is not None else "")
    conn = connect(url, open_timeout=10, close_timeout=2, create_connection=CheckedConnection)
    assert isinstance(conn, CheckedConnection)
    conn.check_events = check_events
    return conn


def next_event(conn: ClientConnection, timeout: float = 10) -> dict:
    return json.loads(conn.recv(timeout=timeout))


def events_until(conn: ClientConnection, predicate, timeout: float = 10) -> list[dict]:
    """Messages received until one satisfies `predicate` (included); TimeoutError if none does."""
    import time

    seen, deadline = [], time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no matching event in {timeout}s; saw {seen}")
        message = next_event(conn, left)
        seen.append(message)
        if predicate(message):
            return seen
