"""The gateway's local HTTP API (loopback by default): what agents on this host call.

  POST /buffer/store     {table, data} or {table, records: [data, ...]} -> 201 {stored, recordIds}
  GET  /buffer/stats     backlog, bytes against the cap, counters (stored, uplinked, dropped, refused, ...)
  GET  /buffer/quarantine  the records the control plane refused for good (newest first)
  GET  /buffer/records?table=&limit=  the records still waiting for the uplink, oldest first (limit 1..1000,
                         default 100)
  POST /uplink/flush     upload now -> {uploaded, duplicates, quarantined, remaining, ok, error}; 202
                         {deferred: true, retryAfterSeconds} inside the control plane's Retry-After window
  GET  /health           200 or 503 (see Gateway.health)
  GET  /metrics          Prometheus text

Errors use the control plane's shape: {"error": {"code", "message", "details": [{field, message}]}}, the
HTTP server's own refusals too (a malformed request line, headers too long: `send_error`).
Bad input is refused whole before anything is stored: what the control plane's /ingest would refuse
(a non-finite number, one outside DynamoDB's range, a table name it does not take) is a 400 here, at
store time, not a quarantined record later.

Framing (HTTP/1.1): a body is framed by one Content-Length of digits, or by Transfer-Encoding:
chunked (read up to MAX_REQUEST_BYTES). A Content-Length that is not digits, two that differ, both
headers at once, another transfer coding, or a body-taking route without either header is a 400
naming the header; a body over MAX_REQUEST_BYTES is a 413, answered before the body is read. After
those the connection is closed (what follows the headers cannot be framed), and after a 413 the
rest of the body is read and discarded first (up to DRAIN_BYTES / DRAIN_SECONDS), so the client,
still sending, receives the answer instead of a connection reset.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import threading
import time
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from edge_gateway.buffer import BufferFull, Closed, Record
from edge_gateway.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from edge_gateway.gateway import Gateway

log = logging.getLogger("edge_gateway.api")

TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")  # fullmatch: `$` would also match before a final \n
MAX_RECORD_BYTES = 128 * 1024      # one record's data as JSON (the control plane takes 256 KiB per request)
MAX_REQUEST_BYTES = 8 * 1024 * 1024
MAX_RECORDS_PER_STORE = 5000
DIGITS = re.compile(r"[0-9]{1,18}")  # a Content-Length: digits only (no sign, no spaces inside), below 1E18
CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(;[^\r\n]*)?\r?\n")
DRAIN_BYTES = 256 * 1024 * 1024    # after a 413: what is read and discarded at most, so the client gets the answer
DRAIN_SECONDS = 10.0
BODY_ROUTES = {"/buffer/store"}   # the routes that read a body: without framing headers, a 400
# The control plane's numbers (DynamoDB's): at most 38 significant digits, magnitude below 1E126.
MAX_DIGITS = 38
MAX_MAGNITUDE = Decimal("1E126")


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
    numbers = _Numbers()
    try:
        body = json.loads(raw, parse_constant=numbers.constant, parse_float=numbers.float,
                          parse_int=numbers.int)
    except (ValueError, RecursionError):
        raise ApiError(400, "VALIDATION_ERROR", "the body is not valid JSON") from None
    if numbers.refused:  # rare: only then is the body walked, to name the field
        path, why = _find_refused(body, "")
        raise ApiError(400, "VALIDATION_ERROR", why, field=(path or "body")[:200])
    # A lone surrogate ("\ud800", or its UTF-8 bytes, which json.loads reads too) is not Unicode text: the
    # control plane refuses it. Only a body with an escape, an 0xED byte or a NUL (UTF-16/32) can hold one.
    if (b"\\u" in raw or b"\xed" in raw or b"\x00" in raw) and (where := _lone_surrogate(body, "")) is not None:
        raise ApiError(400, "VALIDATION_ERROR", "contains a lone surrogate (not valid Unicode)",
                       field=(where or "body")[:200])
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_ERROR", "the body must be a JSON object {table, data} or {table, records}")
    table = body.get("table")
    if table is None:
        raise ApiError(400, "VALIDATION_ERROR", "is required", field="table")
    if not isinstance(table, str) or not TABLE_NAME.fullmatch(table):
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


# ensure_ascii: the text is plain ASCII, so its length is its size (lone surrogates were refused above).
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


class _Refused:
    """A number that parsed but must not be stored; found again by `_find_refused`, which knows its path."""

    def __init__(self, why: str):
        self.why = why


class _Numbers:
    """json.loads hooks: the control plane's number rules (core/strict_json.py), cheap on the common case
    (a text of at most 38 characters cannot hold more than 38 significant digits)."""

    def __init__(self) -> None:
        self.refused = False

    def _refuse(self, why: str) -> _Refused:
        self.refused = True
        return _Refused(why)

    def constant(self, name: str) -> Any:  # NaN, Infinity, -Infinity
        return self._refuse(f"{name} is not JSON (numbers must be finite)")

    def int(self, text: str) -> Any:
        if len(text) <= MAX_DIGITS:
            return int(text)
        if len(text.lstrip("-")) > 126:  # by length, before int(): `1` and 400 zeros has 1 significant digit
            return self._refuse("is too large to be stored (at most 1E126)")
        if _significant_digits(text) > MAX_DIGITS:
            return self._refuse(f"has more than {MAX_DIGITS} significant digits (more than can be stored)")
        return int(text)

    def float(self, text: str) -> Any:
        value = float(text)
        if not math.isfinite(value):  # 1e400 reads as inf
            return self._refuse("is not a finite number")
        if abs(value) >= 1e125 and abs(Decimal(text)) >= MAX_MAGNITUDE:
            return self._refuse("is too large to be stored (at most 1E126)")
        if len(text) > MAX_DIGITS and _significant_digits(text) > MAX_DIGITS:
            return self._refuse(f"has more than {MAX_DIGITS} significant digits (more than can be stored)")
        return value


def _significant_digits(text: str) -> int:
    mantissa = text.lower().split("e")[0].lstrip("-+").replace(".", "")
    return len(mantissa.strip("0")) or 1


def _lone_surrogate(value: Any, path: str) -> str | None:
    """The path of the first string holding a lone surrogate (an object's, for a key), else None."""
    if isinstance(value, str):
        return path if _not_utf8(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _not_utf8(key):
                return path
            if (found := _lone_surrogate(item, f"{path}.{key}" if path else key)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _lone_surrogate(item, f"{path}.{index}" if path else str(index))) is not None:
                return found
    return None


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _find_refused(value: Any, path: str) -> tuple[str, str]:
    if isinstance(value, _Refused):
        return path, value.why
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _find_refused(item, f"{path}.{key}" if path else str(key))
        if found[1]:
            return found
    return "", ""


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
        if route == "/buffer/records":
            _method(method, "GET")
            return 200, self.waiting(path), {}
        if route == "/uplink/flush":
            _method(method, "POST")
            result = g.uplink.flush()
            # Inside the control plane's Retry-After window nothing is sent: 202, deferred (docs/GATEWAY.md).
            wait = {"Retry-After": str(math.ceil(result["retryAfterSeconds"]))} if "retryAfterSeconds" in result else {}
            if result.get("deferred"):
                return 202, result, wait
            return (200 if result["ok"] else 503), result, wait
        if route == "/health":
            _method(method, "GET")
            healthy, body = g.health()
            return (200 if healthy else 503), body, {}
        if route == "/metrics":
            _method(method, "GET")
            g.refresh_gauges()
            return 200, g.metrics.render(), {"Content-Type": CONTENT_TYPE}
        raise ApiError(404, "NOT_FOUND", f"no route {route}")

    def waiting(self, path: str) -> dict:
        """GET /buffer/records?table=&limit=: the records still waiting for the uplink, oldest first."""
        query = parse_qs(path.split("?", 1)[1] if "?" in path else "", keep_blank_values=True)
        unknown = sorted(set(query) - {"table", "limit"})
        if unknown:
            raise ApiError(400, "VALIDATION_ERROR", "is not a parameter (table, limit)", field=unknown[0][:100])
        table = (query.get("table") or [None])[-1] or None
        if table is not None and not TABLE_NAME.fullmatch(table):
            raise ApiError(400, "VALIDATION_ERROR", "is not a table name", field="table")
        raw_limit = (query.get("limit") or ["100"])[-1]
        if not DIGITS.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= 1000:
            raise ApiError(400, "VALIDATION_ERROR", "must be an integer from 1 to 1000", field="limit")
        items = self.gateway.buffer.waiting(table, int(raw_limit))
        return {"items": items, "count": len(items), "backlog": self.gateway.buffer.backlog}

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


class _Unframed(ApiError):
    """The request's body cannot be delimited (or is refused unread): answered, then the connection closes;
    `drain` says the client may still be sending a body to read and discard first."""

    def __init__(self, status: int, code: str, message: str, field: str, drain: bool = False):
        super().__init__(status, code, message, field=field)
        self.drain = drain


_STATUS_CODES = {400: "VALIDATION_ERROR", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT",
                 413: "PAYLOAD_TOO_LARGE", 414: "URI_TOO_LONG", 431: "HEADERS_TOO_LARGE",
                 501: "NOT_IMPLEMENTED", 505: "HTTP_VERSION_NOT_SUPPORTED"}


def _make_handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: agents store in a loop
        server_version = "edge-gateway"
        timeout = 30  # an idle keep-alive connection releases its thread

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s " + format, self.address_string(), *args)

        def __getattr__(self, name: str) -> Any:
            # Every method reaches the router (do_BREW too), which answers 405 or 404 in the error shape;
            # the stdlib would answer an unknown method 501 in HTML.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """The stdlib's own refusals (a malformed request line, a header line too long) in the error shape."""
            self.close_connection = True
            self.request_version = self.protocol_version  # not bare HTTP/0.9: a status line and headers
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:
                phrase = "Error"
            text = (message or phrase)[:200]
            self._reply(code, {"error": {"code": _STATUS_CODES.get(code, "ERROR"), "message": text, "details": []}},
                        {"Connection": "close"})

        def _body(self, route: str) -> bytes:
            """The request body by its framing (see the module doc)."""
            lengths = self.headers.get_all("Content-Length") or []
            codings = self.headers.get_all("Transfer-Encoding") or []
            if codings:
                if lengths:
                    raise _Unframed(400, "VALIDATION_ERROR", "send Content-Length or Transfer-Encoding, not both",
                                    "Transfer-Encoding")
                if [c.strip().lower() for c in ",".join(codings).split(",")] != ["chunked"]:
                    raise _Unframed(400, "VALIDATION_ERROR", "only chunked is supported", "Transfer-Encoding")
                return self._read_chunked()
            if not lengths:
                # No framing: by HTTP/1.1 no body. Whatever the client sent after the headers cannot be
                # told from a next request, so the connection closes after the answer.
                self.close_connection = True
                if self.command in ("POST", "PUT", "PATCH") and route in BODY_ROUTES:
                    raise _Unframed(400, "VALIDATION_ERROR",
                                    "is required for a body (or send Transfer-Encoding: chunked)", "Content-Length")
                return b""
            values = {v.strip() for v in lengths}
            value = values.pop()
            if values or not DIGITS.fullmatch(value):
                raise _Unframed(400, "VALIDATION_ERROR", "must be one non-negative integer of digits",
                                "Content-Length")
            length = int(value)
            if length > MAX_REQUEST_BYTES:
                raise _Unframed(413, "PAYLOAD_TOO_LARGE", f"request body is over {MAX_REQUEST_BYTES} bytes",
                                "Content-Length", drain=True)
            raw = self.rfile.read(length) if length else b""
            if len(raw) < length:
                raise _Unframed(400, "VALIDATION_ERROR", f"the body ended after {len(raw)} of {length} bytes",
                                "Content-Length")
            return raw

        def _read_chunked(self) -> bytes:
            parts, size = [], 0
            while True:
                line = self.rfile.readline(1024)
                found = CHUNK_SIZE_LINE.fullmatch(line)
                if found is None:
                    raise _Unframed(400, "VALIDATION_ERROR", "is chunked, but a chunk size line is malformed",
                                    "Transfer-Encoding")
                length = int(found[1], 16)
                if length == 0:
                    break
                size += length
                if size > MAX_REQUEST_BYTES:
                    raise _Unframed(413, "PAYLOAD_TOO_LARGE", f"request body is over {MAX_REQUEST_BYTES} bytes",
                                    "Transfer-Encoding", drain=True)
                chunk = self.rfile.read(length)
                if len(chunk) < length or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise _Unframed(400, "VALIDATION_ERROR", "is chunked, but a chunk is cut short",
                                    "Transfer-Encoding")
                parts.append(chunk)
            while True:  # trailer fields, then the empty line
                line = self.rfile.readline(8192)
                if line in (b"\r\n", b"\n", b""):
                    break
            return b"".join(parts)

        def _serve(self) -> None:
            with api._in_flight_lock:
                api.in_flight += 1
            headers: dict[str, str] = {}
            drain = False
            try:
                route = self.path.split("?", 1)[0].rstrip("/") or "/"
                raw = self._body(route)
                status, body, headers = api.dispatch(self.command, self.path, raw)
            except _Unframed as e:
                self.close_connection, drain = True, e.drain
                status, body, headers = e.status, e.body(), {**e.headers, "Connection": "close"}
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
            if self.close_connection:
                headers.setdefault("Connection", "close")
            self._reply(status, body, headers)
            if drain:
                self._drain()

        def _reply(self, status: int, body: Any, headers: dict[str, str]) -> None:
            payload = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _drain(self) -> None:
            """The answer is sent; read and discard what the client is still sending (bounded), so closing
            does not reset the connection (unread data makes the kernel send RST) before it read the answer."""
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                deadline, drained = time.monotonic() + DRAIN_SECONDS, 0
                while drained < DRAIN_BYTES and (left := deadline - time.monotonic()) > 0:
                    self.connection.settimeout(left)
                    chunk = self.rfile.read1(1024 * 1024)
                    if not chunk:
                        break
                    drained += len(chunk)
            except OSError:
                pass

    return Handler
