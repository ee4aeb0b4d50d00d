"""The embedded AWS: moto's server app on a free port, in this process.

Built the way moto's ThreadedMotoServer builds it (werkzeug's threaded
server around DomainDispatcherApplication), with one change: every DynamoDB
and DynamoDB Streams request runs under one lock. moto implements a
conditional write as "check, then write" without a lock, so two threads can
both pass the same condition; real DynamoDB is atomic per item, and the
app's exactly-once claims (conditional puts, transactions) depend on that.
Other services stay concurrent: an SQS long poll must not hold up DynamoDB.
It also applies devstack/fast_moto.py, which makes moto's transactions and
GSI queries cost what they touch rather than the whole table (correct only
under that lock).
"""
from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from devstack import fast_moto
from devstack.persistence import ChangeCounter

_SERIALIZED_TARGETS = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")


class SerializeDynamoDB:
    """WSGI middleware: one DynamoDB/DynamoDB Streams request at a time."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(_SERIALIZED_TARGETS):
            return self._app(environ, start_response)
        with self.lock:
            result = self._app(environ, start_response)
            # A WSGI body may be computed lazily while it is iterated: build it
            # inside the lock so the whole operation is serialized.
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


class SerializeConditionalPuts:
    """WSGI middleware: S3 PUTs with If-Match / If-None-Match one at a time. moto checks the
    condition and then writes, without a lock; S3 does both atomically, and the workspace
    store's manifest commit (chalicelib/workspaces) depends on that."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "PUT" or not (
                environ.get("HTTP_IF_MATCH") or environ.get("HTTP_IF_NONE_MATCH")):
            return self._app(environ, start_response)
        with self.lock:
            result = self._app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


class EmbeddedMoto:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        fast_moto.patch_transactions()
        fast_moto.patch_index_queries()
        fast_moto.patch_item_responses()
        serialized = SerializeDynamoDB(SerializeConditionalPuts(DomainDispatcherApplication(create_backend_app)))
        # The snapshotter (devstack/persistence.py) reads under the same lock and saves when `changes` moved.
        self.dynamodb_lock = serialized.lock
        self.changes = ChangeCounter(serialized)
        self._server = make_server(host, port, self.changes, threaded=True, request_handler=MotoRequestHandler)
        # Nagle off (inherited by accepted sockets): werkzeug writes headers and
        # body separately, and the app's boto3 clients reuse keep-alive
        # connections, so every AWS call would otherwise wait ~40 ms for a delayed ACK.
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        # werkzeug logs one line per request at INFO: thousands per minute here.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
