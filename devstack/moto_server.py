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

Two costs of moto's server that every AWS call of the app paid (a job's
lifecycle makes about a dozen) are removed here, because the local stack's
throughput is its CPU per request (one process, one GIL): werkzeug closes
every connection after one response, so each call was a new TCP connection,
a new server thread and a 10 ms drain; and moto finds the backend of every
request by listing its package directory and matching some 200 URL patterns,
under a global lock. Connections are kept alive (`KeepAliveRequestHandler`)
and the backend of a host is looked up once (`CachedDispatcher`).
"""
from __future__ import annotations

import io
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from devstack import fast_moto, journal
from devstack.persistence import ChangeCounter

_SERIALIZED_TARGETS = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")


class _SerializeWhen:
    """WSGI middleware: the requests `applies(environ)` picks run one at a time, body included."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self.lock = threading.Lock()

    def applies(self, environ: dict[str, Any]) -> bool:
        raise NotImplementedError

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.applies(environ):
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


class SerializeDynamoDB(_SerializeWhen):
    """One DynamoDB/DynamoDB Streams request at a time."""

    def applies(self, environ: dict[str, Any]) -> bool:
        return environ.get("HTTP_X_AMZ_TARGET", "").startswith(_SERIALIZED_TARGETS)


class SerializeConditionalPuts(_SerializeWhen):
    """S3 PUTs with If-Match / If-None-Match one at a time. moto checks the
    condition and then writes, without a lock; S3 does both atomically, and the workspace
    store's manifest commit (chalicelib/workspaces) depends on that."""

    def applies(self, environ: dict[str, Any]) -> bool:
        return environ.get("REQUEST_METHOD") == "PUT" and bool(
            environ.get("HTTP_IF_MATCH") or environ.get("HTTP_IF_NONE_MATCH"))


class KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler with HTTP/1.1 keep-alive.

    werkzeug's dev server sends `Connection: close` on every response, since
    it cannot tell where an unread request body ends, and after the response
    it reads and discards whatever the client sent next. Here a request with a
    Content-Length has its body read whole before the app sees it, so the
    stream is at the next request whatever the app read, and werkzeug's
    discard reads from an empty stream; such a connection is kept open
    (as HTTP/1.1 means by default). A chunked request keeps werkzeug's
    close-after-response behaviour.
    """

    def setup(self) -> None:
        super().setup()
        self._connection_rfile = self.rfile
        self._keep_alive = False

    def handle_one_request(self) -> None:
        self.rfile = self._connection_rfile
        self._keep_alive = False
        super().handle_one_request()

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug reads it and closes
            return environ
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return environ
        body = self._connection_rfile.read(length) if length > 0 else b""
        if len(body) == max(length, 0):
            environ["wsgi.input"] = io.BytesIO(body)
            self.rfile = io.BytesIO()  # werkzeug's after-response discard finds nothing of the next request
            self._keep_alive = True
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if self._keep_alive and keyword.lower() == "connection" and value.lower() == "close":
            return
        super().send_header(keyword, value)


class CachedDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, with the backend of each host looked up once (its own lookup lists
    moto's package directory and tries every backend's URL patterns on every request)."""

    def __init__(self, create_app: Callable[..., Any]) -> None:
        super().__init__(create_app)
        self._backends: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        try:
            return self._backends[host]
        except KeyError:
            backend = self._backends[host] = super().get_backend_for_host(host)
            return backend


class EmbeddedMoto:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        fast_moto.patch_transactions()
        fast_moto.patch_index_queries()
        fast_moto.patch_item_responses()
        fast_moto.patch_request_costs()
        # The journal (devstack/journal.py, once installed) appends each call's record inside the
        # DynamoDB lock, so its order is the apply order, and waits for the fsync outside it, so
        # concurrent calls share one.
        serialized = SerializeDynamoDB(journal.RecordCalls(SerializeConditionalPuts(CachedDispatcher(create_backend_app))))
        # The snapshotter (devstack/persistence.py) reads under the same lock and saves when `changes` moved.
        self.dynamodb_lock = serialized.lock
        self.changes = ChangeCounter(journal.CommitBeforeAnswer(serialized))
        self._server = make_server(host, port, self.changes, threaded=True, request_handler=KeepAliveRequestHandler)
        # Idle keep-alive connections hold a (daemon) thread each until their client closes them:
        # stopping must not wait for those.
        self._server.block_on_close = False
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
