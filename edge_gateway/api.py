"""The gateway's local HTTP API (loopback by default): what agents on this host call.

  POST /buffer/store     {table, data} or {table, records: [data, ...]} -> 201 {stored, recordIds}
  GET  /buffer/stats     backlog, bytes against the cap, counters (stored, uplinked, dropped, refused, ...)
  GET  /buffer/quarantine  the records the control plane refused for good (newest first)
  POST /uplink/flush     upload now -> {uploaded, duplicates, quarantined, remaining, ok, error}
  GET  /health           200 or 503 (see Gateway.health)
  GET  /metrics          Prometheus text

Errors use the control plane's shape: {"error": {"code", "message", "details": [{field, message}]}}.
Bad input is refused whole before anything is stored.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from edge_gateway.buffer import BufferFull, Closed, Record
from edge_gateway.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from edge_gateway.gateway import Gateway

log = logging.getLogger("edge_gateway.api")

TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
MAX_RECORD_BYTES = 128 * 1024      # one record's data as JSON (the control plane takes 256 KiB per request)
MAX_REQUEST_BYTES = 8 * 1024 * 1024
MAX_RECORDS_PER_STORE = 5000


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}

    def body(self) -> dict:
        details = [{"field": self.field, "message": self.message}] if self.field else []
        return {"error": {"code": self.code, "message": self.message, "details": details}}


def parse_store(raw: bytes, now_ms: int) -> list[Record]:
    """Validate a store body into records (all or nothing)."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"request body is over {MAX_REQUEST_BYTES} bytes")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, "VALIDATION_ERROR", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_ERROR", "the body must be a JSON object {table, data} or {table, records}")
    table = body.get("table")
    if table is None:
        raise ApiError(400, "VALIDATION_ERROR", "is required", field="table")
    if not isinstance(table, str) or not TABLE_NAME.match(table):
        raise ApiError(400, "VALIDATION_ERROR",
                       "must be 1-64 characters: a letter, then letters, digits, '_', '.', '-'", field="table")
    unknown = sorted(set(body) - {"table", "data", "records"})
    if unknown:
        raise ApiError(400, "VALIDATION_ERROR", "is not a field of a store (table, data or records)",
                       field=str(unknown[0])[:100])
    has_data, has_records = "data" in body, "records" in body
    if has_data == has_records:
        raise ApiError(400, "VALIDATION_ERROR", "exactly one of data or records is required", field="data")
    if has_records:
        values = body["records"]
        if not isinstance(values, list) or not values:
            raise ApiError(400, "VALIDATION_ERROR", "must be a non-empty list of records", field="records")
        if len(values) > MAX_RECORDS_PER_STORE:
            raise ApiError(400, "VALIDATION_ERROR", f"at most {MAX_RECORDS_PER_STORE} records per store",
                           field="records")
    else:
        values = [body["data"]]
    ts = _iso_ms(now_ms)
    # record ids: time-sortable and unique without coordination: 48-bit ms time + 80 random bits, hex
    prefix = f"{now_ms:012x}"
    noise = os.urandom(10 * len(values)).hex()  # one call for the whole store, 20 hex digits per record
    records = []
    dumps = _compact.encode
    for i, value in enumerate(values):
        text = dumps(value)
        if len(text) > MAX_RECORD_BYTES:  # ASCII (non-ASCII is escaped): characters are bytes
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"a record may be at most {MAX_RECORD_BYTES} bytes as JSON",
                           field="data" if has_data else f"records.{i}")
        records.append(Record(prefix + noise[20 * i:20 * i + 20], table, text, ts))
    return records


# ensure_ascii: the text is plain ASCII, so its length is its size, and a lone surrogate ("\ud800", valid
# JSON but not encodable as UTF-8) stays an escape instead of failing the insert.
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Api:
    def __init__(self, gateway: "Gateway", host: str, port: int):
        self.gateway = gateway
        self.accepting = True
        self.in_flight = 0
        self._in_flight_lock = threading.Condition()
        handler = _make_handler(self)
        self.server = _Server((host, port), handler)
        self.host, self.port = self.server.server_address[:2]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="api", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting connections; wait for requests already being handled."""
        self.accepting = False
        self.server.shutdown()
        self.server.server_close()
        deadline = time.monotonic() + timeout
        with self._in_flight_lock:
            while self.in_flight and time.monotonic() < deadline:
                self._in_flight_lock.wait(0.1)

    # --- routes --------------------------------------------------------------------

    def dispatch(self, method: str, path: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        route = path.split("?", 1)[0].rstrip("/") or "/"
        g = self.gateway
        if not self.accepting:
            raise ApiError(503, "UNAVAILABLE", "the gateway is shutting down", headers={"Retry-After": "5"})
        if route == "/buffer/store":
            _method(method, "POST")
            return self.store(raw)
        if route == "/buffer/stats":
            _method(method, "GET")
            return 200, g.stats(), {}
        if route == "/buffer/quarantine":
            _method(method, "GET")
            return 200, {"items": g.buffer.quarantined(), "count": g.buffer.counters.get("quarantined", 0)}, {}
        if route == "/uplink/flush":
            _method(method, "POST")
            result = g.uplink.flush()
            return (200 if result["ok"] else 503), result, {}
        if route == "/health":
            _method(method, "GET")
            healthy, body = g.health()
            return (200 if healthy else 503), body, {}
        if route == "/metrics":
            _method(method, "GET")
            g.refresh_gauges()
            return 200, g.metrics.render(), {"Content-Type": CONTENT_TYPE}
        raise ApiError(404, "NOT_FOUND", f"no route {route}")

    def store(self, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        g = self.gateway
        try:
            records = parse_store(raw, int(time.time() * 1000))
        except ApiError:
            g.metrics.invalid.inc()
            g.invalid_stores += 1
            raise
        try:
            result = g.buffer.store(records)
        except BufferFull as full:
            raise ApiError(507, "INSUFFICIENT_STORAGE",
                           f"the buffer is at its disk cap ({full.used} of {full.cap} bytes used; this store needs "
                           f"{full.needed}): nothing was stored; retry after the uplink drains the backlog",
                           headers={"Retry-After": "5"}) from None
        except Closed:
            raise ApiError(503, "UNAVAILABLE", "the gateway is shutting down", headers={"Retry-After": "5"}) from None
        g.uplink.nudge_if_batch_ready()
        body = {"stored": result.stored, "recordIds": [r.record_id for r in records]}
        if result.dropped:
            body["droppedOldest"] = result.dropped
        return 201, body, {}


def _method(actual: str, expected: str) -> None:
    if actual != expected:
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"use {expected}", headers={"Allow": expected})


def _make_handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: agents store in a loop
        server_version = "edge-gateway"
        timeout = 30  # an idle keep-alive connection releases its thread

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s " + format, self.address_string(), *args)

        def _serve(self) -> None:
            with api._in_flight_lock:
                api.in_flight += 1
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST_BYTES:
                    self.close_connection = True  # the body is not read: the connection cannot be reused
                    raise ApiError(413, "PAYLOAD_TOO_LARGE", f"request body is over {MAX_REQUEST_BYTES} bytes")
                raw = self.rfile.read(length) if length else b""
                status, body, headers = api.dispatch(self.command, self.path, raw)
            except ApiError as e:
                status, body, headers = e.status, e.body(), e.headers
            except Exception:  # noqa: BLE001 - never a stack trace to the client
                log.exception("unhandled error in %s %s", self.command, self.path)
                status, body, headers = 500, {"error": {"code": "INTERNAL", "message": "internal error",
                                                        "details": []}}, {}
            finally:
                with api._in_flight_lock:
                    api.in_flight -= 1
                    api._in_flight_lock.notify_all()
            payload = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return Handler
