"""HTTP/1.1 over a bare socket, for requests no polite client sends (a bad Content-Length, a
header with a NUL, a body without framing): what the server answers, and whether it closed."""
from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    closed: bool  # the server closed the connection after this answer

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def exchange(host: str, port: int, request: bytes, timeout: float = 10) -> RawReply:
    """Send `request` as is, read one answer (TimeoutError if none comes within `timeout`)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything; read what it said
        return read_reply(sock)


def read_reply(sock: socket.socket) -> RawReply:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = _recv(sock)
        if not chunk:
            raise ConnectionError(f"closed before a full answer: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = _recv(sock)
        if not chunk:
            break
        rest += chunk
    try:
        sock.settimeout(2)
        closed = _recv(sock) == b""
    except (TimeoutError, socket.timeout):
        closed = False
    return RawReply(status, headers, rest[:length], closed)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
