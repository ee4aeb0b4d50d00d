"""boto3 clients, created once per process and shared.

Creating a client costs tens of milliseconds, so each is built on first use
(cold start pays only for what a handler touches) and reused after. boto3
clients are thread-safe; the connection pool is sized for the fan-out's
concurrent posts. Endpoints follow the standard AWS_ENDPOINT_URL variables,
which is how the local stack points everything at its embedded moto.
"""
from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=64,
    connect_timeout=3,
    read_timeout=10,
)
_lock = threading.Lock()
_clients: dict[tuple[str, str | None], Any] = {}
_session: boto3.session.Session | None = None


def session() -> boto3.session.Session:
    """The shared session; handlers registered on session().events reach every client made after."""
    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session


def client(service: str, endpoint_url: str | None = None) -> Any:
    key = (service, endpoint_url)
    found = _clients.get(key)
    if found is not None:
        return found
    shared = session()
    with _lock:
        if key not in _clients:
            _clients[key] = shared.client(service, endpoint_url=endpoint_url, config=_CONFIG)
        return _clients[key]


def reset() -> None:
    """Forget every client (tests switch between mock_aws and servers)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
