"""A small HTTP client for the control plane: one persistent connection, a timeout, the agent key."""
from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from urllib.parse import quote, urlsplit


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class Unreachable(Exception):
    """No answer: refused, reset, timed out. The request may or may not have been processed."""


class ControlPlane:
    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0, identity=None):  # noqa: ANN001
        # identity: an edge_gateway.tls.Identity: mutual TLS with the gateway's certificate, no API key (issue 21).
        self.identity = identity
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"CONTROL_PLANE_URL must be http(s)://host[:port][/prefix], got {base_url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.prefix = parts.path
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._local = threading.local()  # one connection per thread (uplink, control channel, flush)

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self.identity is not None and self._local.generation != self.identity.generation:
            self._drop()  # renewed: the next handshake presents the new certificate
            conn = None
        if conn is None:
            if self.identity is not None:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                   context=self.identity.context())
                self._local.generation = self.identity.generation
            else:
                cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
                conn = cls(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def request(self, method: str, path: str, body: dict | bytes | None = None) -> Reply:
        """`body`: a dict to send as JSON, or JSON bytes already encoded."""
        if isinstance(body, bytes):
            data: bytes | None = body
        else:
            data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if self.identity is None:  # with a certificate the TLS handshake is the credential
            headers["Authorization"] = f"Bearer {self.api_key}"
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn = self._conn()
            conn.request(method, self.prefix + path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
            if reply.headers.get("connection", "").lower() == "close":
                self._drop()
            return reply
        except (OSError, http.client.HTTPException) as e:
            self._drop()
            raise Unreachable(f"{method} {path}: {type(e).__name__}: {e}") from None

    def close(self) -> None:
        self._drop()

    def ws_url(self) -> str:
        scheme = "wss" if self.scheme == "https" else "ws"
        port = f":{self.port}" if self.port else ""
        return f"{scheme}://{self.host}{port}{self.prefix}/ws?token={quote(self.api_key, safe='')}"
