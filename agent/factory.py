"""The factory loop on the agent's side: send a patch batch to the control plane and follow it to
its end (`agent patch submit`), and record a batch applied to local files (`agent patch apply`).

Exit codes (docs/FACTORY.md; the same for `submit` and `apply`):

  0  applied (a dry run: every operation validated)
  1  failed: an operation failed, nothing changed (a dry run: an operation would fail)
  2  invalid input: unreadable JSON, not a batch, or the control plane answered 400/413/415
  3  rejected: the control plane rejected the batch (drift, or it could not be queued)
  4  unreachable: no answer from the control plane (connection refused, timeouts, 5xx after retries)
  5  refused: the control plane refused the request (401, 403, 404, 409: key, scope, a batchId in use)
  6  timed out: the batch was still queued when --timeout ran out (it may still apply: see its batchId)

Following a batch: a WebSocket (`/ws?token=`) is opened before the batch is sent, so no event can
be missed; `patch:applied`, `patch:failed` or `patch:rejected` naming the batchId ends the wait
(the batch is then read once over REST: one event names one operation, the batch has them all).
Every `poll` seconds without such an event the batch is read over REST as well (an agent key only
receives its own agent's events, and a message can be lost with its connection); when the socket
cannot be opened or drops, REST polling alone carries on. The `websockets` package is optional: the
agent runs on machines we do not control, and without it the loop polls.

Standard library only otherwise; never imports chalicelib.
"""
from __future__ import annotations

import json
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from agent.client import ApiError, Client, Stopped

EXIT_APPLIED, EXIT_FAILED, EXIT_INVALID, EXIT_REJECTED, EXIT_UNREACHABLE, EXIT_REFUSED, EXIT_TIMEOUT = range(7)
EXIT_CODES = {"applied": EXIT_APPLIED, "validated": EXIT_APPLIED, "failed": EXIT_FAILED,
              "rejected": EXIT_REJECTED}
TERMINAL = ("applied", "failed", "rejected")
OUTCOME_EVENTS = tuple(f"patch:{s}" for s in TERMINAL)


class InvalidInput(Exception):
    """The batch cannot be sent: exit 2."""


def exit_code_of(error: BaseException) -> int:
    """What a failed call means for the exit status."""
    if isinstance(error, ApiError):
        if error.status in (400, 413, 415, 422):
            return EXIT_INVALID
        if error.status in (401, 403, 404, 409):
            return EXIT_REFUSED
        return EXIT_UNREACHABLE  # 5xx and 429 after the client's retries
    if isinstance(error, InvalidInput):
        return EXIT_INVALID
    return EXIT_UNREACHABLE


def read_batch(source: str, stdin: TextIO | None = None) -> dict[str, Any]:
    """The batch JSON from a file or '-' (stdin); InvalidInput when it is not a JSON object with operations."""
    try:
        raw = (stdin or sys.stdin).read() if source == "-" else open(source, encoding="utf-8").read()
    except OSError as e:
        raise InvalidInput(f"cannot read {source}: {e.strerror or e}") from None
    try:
        batch = json.loads(raw)
    except ValueError as e:
        raise InvalidInput(f"{source} is not JSON: {e}") from None
    if not isinstance(batch, dict) or not isinstance(batch.get("operations"), list):
        raise InvalidInput(f"{source} is not a patch batch (a JSON object with an operations list)")
    return batch


def ws_url(rest_url: str) -> str:
    """ws(s)://host/ws?token=... for the local stack's REST URL (same port); `--ws-url` overrides it
    on AWS, where the WebSocket API has its own address."""
    parts = urllib.parse.urlsplit(rest_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "/ws", "", ""))


def _with_token(url: str, token: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode({"token": token})
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@dataclass
class Follow:
    """How a submitted batch was followed (printed with the result, for the operator and tests)."""

    via: str = "rest"                   # "websocket" when an outcome event ended the wait
    events: list[str] = field(default_factory=list)
    polls: int = 0
    socket_error: str | None = None

    def shown(self) -> dict[str, Any]:
        return {"via": self.via, "events": self.events, "polls": self.polls, "socketError": self.socket_error}


class _Socket:
    """A WebSocket to the control plane, or nothing (no `websockets`, refused, dropped)."""

    def __init__(self, url: str | None, token: str, log: Callable[[str], None]):
        self.conn: Any = None
        self.error: str | None = None
        if url is None:
            self.error = "disabled"
            return
        try:
            from websockets.sync.client import connect
        except ImportError:
            self.error = "the websockets package is not installed"
            return
        try:
            self.conn = connect(_with_token(url, token), open_timeout=10, close_timeout=2)
            hello = json.loads(self.conn.recv(timeout=10))
            if hello.get("event") != "system:connected":
                raise ValueError(f"unexpected first message {hello.get('event')!r}")
        except Exception as e:  # noqa: BLE001 - any socket trouble: REST polling carries on
            self.fail(e, log)

    def fail(self, error: BaseException, log: Callable[[str], None]) -> None:
        self.error = f"{type(error).__name__}: {error}"[:300]
        log(f"websocket unavailable ({self.error}); following the batch by REST polling")
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
        self.conn = None

    def outcome_event(self, batch_id: str, timeout: float, log: Callable[[str], None]) -> str | None:
        """The name of an outcome event for `batch_id` received within `timeout` s, else None."""
        if self.conn is None:
            time.sleep(timeout)
            return None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                raw = self.conn.recv(timeout=left)
            except TimeoutError:
                return None
            except Exception as e:  # noqa: BLE001 - closed or broken: poll from now on
                self.fail(e, log)
                return None
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            data = message.get("data") or {}
            if message.get("event") in OUTCOME_EVENTS and isinstance(data, dict) and data.get("batchId") == batch_id:
                return str(message["event"])


def submit(client: Client, batch: dict[str, Any], *, socket_url: str | None, timeout: float = 600.0,
           poll: float = 2.0, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)
           ) -> tuple[int, dict[str, Any]]:
    """Send `batch` and follow it to its end: (exit code, what to print)."""
    if batch.get("dryRun"):
        answer = client.request("POST", "/api/patches/apply", batch,
                                headers={"Idempotency-Key": f"submit-{uuid.uuid4()}"})
        return EXIT_CODES.get(answer.get("status"), EXIT_FAILED), answer
    socket = _Socket(socket_url, client.api_key, log)
    follow = Follow(socket_error=socket.error)
    try:
        # An Idempotency-Key makes the client's retries of a lost answer safe (no second batch).
        accepted = client.request("POST", "/api/patches/apply", batch,
                                  headers={"Idempotency-Key": f"submit-{uuid.uuid4()}"})
        batch_id = accepted["batchId"]
        log(f"batch {batch_id} queued")
        deadline = time.monotonic() + timeout
        while True:
            event = socket.outcome_event(batch_id, max(0.0, min(poll, deadline - time.monotonic())), log)
            if event is not None:
                follow.events.append(event)
            view = client.request("GET", f"/api/patches/batches/{urllib.parse.quote(batch_id, safe='')}")
            follow.polls += 1
            if view.get("status") in TERMINAL:
                follow.via = "websocket" if event is not None else "rest"
                follow.socket_error = socket.error
                return EXIT_CODES[view["status"]], {**view, "followedBy": follow.shown()}
            if time.monotonic() >= deadline:
                follow.socket_error = socket.error
                return EXIT_TIMEOUT, {**view, "followedBy": follow.shown(),
                                      "error": f"still {view.get('status')} after {timeout:.0f} s"}
    finally:
        socket.close()


def new_batch_id() -> str:
    """A batchId for a local batch that has none: time-sortable, unique enough, within the pattern."""
    return f"local-{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:12]}"


def report(client: Client, batch: dict[str, Any], result: dict[str, Any], duration_ms: int,
           workspace: str | None = None) -> dict[str, Any]:
    """POST /api/patches/events for a batch applied (or failed) on local files. The Idempotency-Key
    is derived from the batchId, so a retried report records nothing twice."""
    batch_id = batch.get("batchId") or new_batch_id()
    body: dict[str, Any] = {"batchId": batch_id, "durationMs": max(0, int(duration_ms)),
                            "results": result["results"]}
    for name in ("orderId", "factory", "phase", "taskId"):
        if batch.get(name):
            body[name] = batch[name]
    ws = workspace or batch.get("workspace")
    if ws:
        body["workspace"] = ws
    answer: dict[str, Any] = client.request("POST", "/api/patches/events", body,
                                            headers={"Idempotency-Key": f"patch-events-{batch_id}"})
    return answer


def client_or_none(url: str | None, key: str | None) -> Client | None:
    return Client(url, key) if url and key else None


__all__ = ["ApiError", "Client", "Follow", "InvalidInput", "Stopped", "exit_code_of", "read_batch", "report",
           "submit", "ws_url"]
