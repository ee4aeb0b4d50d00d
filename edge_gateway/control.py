"""The control channel: commands from the control plane, over its WebSocket, with polling as fallback.

- Connects to /ws?token=<agent key>; `command:issued` events (only this
  agent's: the fan-out gives an agent key its own agent's events) run the
  registered handler for the command's type and ack it with
  POST /commands/{commandId}/ack.
- Each command runs and is acked once: its outcome is recorded in the
  buffer's `commands_done` table (durable) before the ack is sent, so a
  second delivery (the socket and a poll, a replayed event, a restart) finds
  it and at most re-sends the same ack, which the control plane answers with
  the first outcome.
- While the socket is down, and once after every (re)connect, it polls
  GET /agents/{agentId}/commands?status=pending.
- Reconnects with exponential backoff and full jitter.
- Connection life (API Gateway closes a connection idle for 10 minutes and any
  connection after 2 hours): sends an application ping (`{"action": "ping"}`)
  when nothing was sent for GATEWAY_WS_PING_SECONDS (default 300), and renews
  the connection after GATEWAY_WS_RENEW_SECONDS (default 6600) with an overlap:
  the new connection is open and reading before the old one is closed, so
  there is no moment without a connection; a command delivered on both is
  run once (the dedupe above), and the catch-up poll after each connect covers
  a connection the server closed first.
- Other events: `on_event[name](data)` (config:changed), `on_connect` callbacks
  after every (re)connect (the configuration fetch).
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any, Callable

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from edge_gateway.buffer import Buffer, Closed
from edge_gateway.client import ControlPlane, Unreachable
from edge_gateway.metrics import Metrics

log = logging.getLogger("edge_gateway.control")

Handler = Callable[[dict], Any]  # payload -> result (JSON-able); raising means status "failed"


class ControlChannel:
    def __init__(self, buffer: Buffer, control_plane: ControlPlane, metrics: Metrics, ws_url: str,
                 agent_id: Callable[[], str | None], *, poll_seconds: float = 5.0, renew_seconds: float = 6600.0,
                 ping_seconds: float = 300.0,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0):
        self.buffer = buffer
        self.cp = control_plane
        self.metrics = metrics
        self.ws_url = ws_url
        self.agent_id = agent_id
        self.poll_seconds = poll_seconds
        self.renew_seconds = renew_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.handlers: dict[str, Handler] = {}
        self.connected = False
        self.connected_since: float | None = None
        self.connections = 0
        self.last_error: str | None = None
        self.last_poll: float | None = None
        self.acked = 0
        self._lock = threading.Lock()  # one command at a time: a duplicate delivery waits and finds it done
        self._stop = threading.Event()
        self._ws: _Connection | None = None
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.ping_seconds = ping_seconds
        self.renewals = 0
        self.pings = 0
        self.on_connect: list[Callable[[], None]] = []          # after every (re)connect
        self.on_event: dict[str, Callable[[dict], None]] = {}   # other events by name (config:changed)

    def register(self, command_type: str, handler: Handler) -> None:
        self.handlers[command_type] = handler

    # --- one command -----------------------------------------------------------

    def handle(self, command: dict) -> str:
        """Run and ack `command` once; answers what happened ("acked", "duplicate", "ack-pending", ...)."""
        command_id = command.get("commandId")
        if not isinstance(command_id, str):
            return "ignored"
        with self._lock:
            done = self.buffer.command_outcome(command_id)
            if done is not None:
                status, result, acked = done
                if acked:
                    self.metrics.commands.labels("duplicate").inc()
                    return "duplicate"
                return self._ack(command_id, status, result)  # ran before, its ack did not get through
            handler = self.handlers.get(str(command.get("type")))
            if handler is None:
                status, result = "failed", {"error": f"no handler for command type {command.get('type')!r}"}
            else:
                self.metrics.command_runs.inc()
                try:
                    status, result = "acked", handler(command.get("payload") or {})
                except Exception as e:  # noqa: BLE001 - a failing handler is the command's outcome
                    log.exception("command %s (%s) failed", command_id, command.get("type"))
                    status, result = "failed", {"error": f"{type(e).__name__}: {e}"}
            text = json.dumps(result, default=str) if result is not None else None
            self.buffer.record_command(command_id, status, text, acked=False)
            return self._ack(command_id, status, text)

    def _ack(self, command_id: str, status: str, result_text: str | None) -> str:
        body: dict[str, Any] = {"status": status}
        if result_text is not None:
            body["result"] = json.loads(result_text)
        try:
            reply = self.cp.request("POST", f"/commands/{command_id}/ack", body)
        except Unreachable as e:
            self.last_error = str(e)
            return "ack-pending"
        if reply.status in (200, 201) or reply.status in (404, 409):
            # 404: gone/not ours; 409: expired or already acked differently: nothing more to send either way
            self.buffer.record_command(command_id, status, result_text, acked=True)
            self.acked += 1
            self.metrics.commands.labels(status if reply.status < 300 else f"ack-{reply.status}").inc()
            return status if reply.status < 300 else f"ack-{reply.status}"
        self.last_error = f"ack {command_id}: {reply.status}"
        return "ack-pending"

    def retry_pending_acks(self) -> None:
        for command_id, status, result in self.buffer.unacked_commands():
            with self._lock:
                done = self.buffer.command_outcome(command_id)
                if done is None or done[2]:
                    continue  # acked meanwhile (by handle() on another thread): once is enough
                self._ack(command_id, status, result)

    def poll(self) -> int:
        """Run the pending commands the control plane lists for this agent; answers how many were handled."""
        agent_id = self.agent_id()
        if not agent_id:
            return 0
        self.retry_pending_acks()
        try:
            reply = self.cp.request("GET", f"/agents/{agent_id}/commands?status=pending&limit=50")
        except Unreachable as e:
            self.last_error = str(e)
            return 0
        self.last_poll = time.time()
        if reply.status != 200:
            self.last_error = f"poll: {reply.status}"
            return 0
        items = (reply.json() or {}).get("items") or []
        for command in items:
            self.handle(command)
        return len(items)

    # --- the socket --------------------------------------------------------------

    def start(self) -> None:
        for target, name in ((self._socket_loop, "control-socket"), (self._poll_loop, "control-poll")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _open(self) -> "_Connection":
        # A callable: a fresh URL per connection (a certificate's short-lived ws-token, issue 21).
        url = self.ws_url() if callable(self.ws_url) else self.ws_url
        ws = connect(url, open_timeout=10, close_timeout=2, max_size=256 * 1024)
        conn = _Connection(ws, self._wake)
        conn.reader = threading.Thread(target=self._read_loop, args=(conn,), name="control-reader", daemon=True)
        conn.reader.start()
        self.connections += 1
        self.metrics.control_reconnects.inc()
        # Commands issued while no connection was open: the socket replays nothing. The configuration too
        # (fetched on every (re)connect: a config:changed sent in the gap is not replayed either).
        threading.Thread(target=self._after_connect, name="control-catch-up", daemon=True).start()
        return conn

    def _after_connect(self) -> None:
        self._safe_poll()
        for callback in list(self.on_connect):
            try:
                callback()
            except Exception:  # noqa: BLE001
                log.exception("on-connect callback failed")

    def _socket_loop(self) -> None:
        """Keeps one connection open: pings inside the idle limit, and replaces it before the maximum
        connection time with an overlap (the new one is open and reading before the old one closes)."""
        failures = 0
        current: _Connection | None = None
        while not self._stop.is_set():
            if current is None or current.closed:
                if current is not None:
                    current.close()
                    self.last_error = f"control channel closed: {current.close_reason}"
                self._set_connected(None)
                current = None
                if failures:
                    self._stop.wait(random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** min(failures, 20))))
                    if self._stop.is_set():
                        break
                try:
                    current = self._open()
                except (OSError, InvalidStatus, TimeoutError, ConnectionClosed) as e:
                    self.last_error = f"control channel: {type(e).__name__}: {e}"
                    failures += 1
                    continue
                except Exception as e:  # noqa: BLE001 - never let the channel thread die
                    log.exception("control channel failed")
                    self.last_error = f"control channel: {type(e).__name__}: {e}"
                    failures += 1
                    continue
                failures = 0
                self._set_connected(current)
            now = time.monotonic()
            if now - current.opened > self.renew_seconds:
                try:
                    fresh = self._open()
                except Exception as e:  # noqa: BLE001 - keep the old one while it lasts; try again shortly
                    self.last_error = f"control channel renewal: {type(e).__name__}: {e}"
                    self._stop.wait(min(self.backoff_cap, max(0.2, self.backoff_base)))
                    continue
                old, current = current, fresh
                self._set_connected(current)
                self.renewals += 1
                old.close()  # after the new one reads: no moment without a connection
                log.info("control channel renewed before the maximum connection time")
                continue
            if now - current.last_sent > self.ping_seconds:
                try:
                    current.send(json.dumps({"action": "ping"}))
                    self.pings += 1
                except Exception:  # noqa: BLE001 - the reader sees the close
                    current.closed = True
                    continue
            wait = min(current.opened + self.renew_seconds, current.last_sent + self.ping_seconds) - now
            self._wake.wait(max(0.01, min(wait, 1.0)))
            self._wake.clear()
        if current is not None:
            current.close()
        self._set_connected(None)

    def _set_connected(self, conn: "_Connection | None") -> None:
        self._ws = conn
        if conn is not None:
            self.connected, self.connected_since = True, time.time()
            self.metrics.control_connected.set(1)
        elif self.connected:
            self.connected = False
            self.metrics.control_connected.set(0)

    def _read_loop(self, conn: "_Connection") -> None:
        try:
            while not conn.closed:
                try:
                    message = conn.ws.recv(timeout=1.0)
                except TimeoutError:
                    continue
                self._on_message(message)
        except ConnectionClosed as e:
            conn.close_reason = f"{e.rcvd.code if e.rcvd else 'no close frame'} {e.rcvd.reason if e.rcvd else ''}"
        except Exception as e:  # noqa: BLE001
            conn.close_reason = f"{type(e).__name__}: {e}"
        finally:
            conn.closed = True
            self._wake.set()

    def _on_message(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        data = event.get("data")
        name = event.get("event")
        if name == "command:issued" and isinstance(data, dict):
            try:
                self.handle(data)
            except Closed:
                pass
        elif isinstance(name, str) and name in self.on_event and isinstance(data, dict):
            try:
                self.on_event[name](data)
            except Exception:  # noqa: BLE001
                log.exception("handling %s failed", name)

    def _safe_poll(self) -> None:
        try:
            self.poll()
        except Closed:
            pass
        except Exception:  # noqa: BLE001
            log.exception("command poll failed")

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            if not self.connected:
                self._safe_poll()
            else:
                try:
                    self.retry_pending_acks()
                except Closed:
                    return
                except Exception:  # noqa: BLE001
                    log.exception("ack retry failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def status(self) -> dict:
        return {"connected": self.connected, "connectedSince": _iso(self.connected_since),
                "connections": self.connections, "renewals": self.renewals, "pings": self.pings,
                "renewSeconds": self.renew_seconds, "pingSeconds": self.ping_seconds, "lastPoll": _iso(self.last_poll),
                "acked": self.acked, "lastError": self.last_error,
                "handlers": sorted(self.handlers)}


class _Connection:
    """One WebSocket and its reader thread."""

    def __init__(self, ws: ClientConnection, wake: threading.Event):
        self.ws = ws
        self.opened = time.monotonic()
        self.last_sent = self.opened
        self.closed = False
        self.close_reason = ""
        self.reader: threading.Thread | None = None
        self._wake = wake

    def send(self, text: str) -> None:
        self.ws.send(text)
        self.last_sent = time.monotonic()

    def close(self) -> None:
        self.closed = True
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass
        if self.reader is not None and self.reader is not threading.current_thread():
            self.reader.join(timeout=3)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
