"""The local stack enforces API Gateway's WebSocket time limits (devstack/websocket.py).

WS_IDLE_TIMEOUT_SECONDS (no message from the client for that long) and WS_MAX_CONNECTION_SECONDS
(open that long, busy or not) close the socket with 1001 and run $disconnect, as API Gateway does.
One stack (the toy app) with both limits shortened; waits are on conditions or on the limits.
"""
from __future__ import annotations

import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed

from devstack.testing import Devstack, running_devstack
from tests.e2e.test_devstack import TOY_APP, connection_id_of, management, open_socket, recorded, wait_for

IDLE = 1.5
CAP = 4.0


@pytest.fixture(scope="module")
def stack() -> Devstack:
    with running_devstack(app_module=TOY_APP, env={"WS_IDLE_TIMEOUT_SECONDS": str(IDLE),
                                                   "WS_MAX_CONNECTION_SECONDS": str(CAP)}) as running:
        yield running
    assert running.returncode == 0, f"devstack did not stop cleanly:\n{running.log_tail()}"


def closed_after(socket, started: float, timeout: float) -> tuple[float, int | None]:
    """Read until the server closes the socket; (seconds since `started`, the close code it sent)."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            socket.recv(timeout=timeout)
    return time.monotonic() - started, closed.value.rcvd.code if closed.value.rcvd else None


def disconnect_of(stack: Devstack, connection_id: str) -> dict:
    return wait_for(stack, "$disconnect", lambda: recorded(stack, f"disconnect#{connection_id}"))["payload"]


def test_a_silent_client_is_closed_at_the_idle_timeout_and_disconnect_runs(stack):
    with open_socket(stack) as socket:
        connection_id = connection_id_of(socket)  # the client's last message: the idle clock starts here
        started = time.monotonic()
        elapsed, code = closed_after(socket, started, timeout=IDLE * 4)
    assert code == 1001
    assert IDLE - 0.2 <= elapsed < IDLE + 2.0
    context = disconnect_of(stack, connection_id)["requestContext"]
    assert (context["eventType"], context["disconnectStatusCode"]) == ("DISCONNECT", 1001)
    with pytest.raises(management(stack).exceptions.GoneException):
        management(stack).post_to_connection(ConnectionId=connection_id, Data=b"too late")


def test_messages_the_server_sends_do_not_keep_a_connection_alive(stack):
    client = management(stack)
    with open_socket(stack) as socket:
        connection_id = connection_id_of(socket)
        started = time.monotonic()
        stop = threading.Event()

        def keep_posting() -> None:  # the control plane talks, the client never answers
            while not stop.wait(0.3):
                try:
                    client.post_to_connection(ConnectionId=connection_id, Data=b"server says hi")
                except client.exceptions.GoneException:
                    return

        poster = threading.Thread(target=keep_posting)
        poster.start()
        try:
            elapsed, code = closed_after(socket, started, timeout=IDLE * 4)
        finally:
            stop.set()
            poster.join()
    assert code == 1001 and elapsed < IDLE + 2.0


def test_a_pinging_client_stays_past_the_idle_timeout_and_is_closed_at_the_cap(stack):
    with open_socket(stack) as socket:
        started = time.monotonic()  # the connection opened just before
        connection_id = connection_id_of(socket)
        pings = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.send("ping")  # the toy app echoes: the client is active
                assert socket.recv(timeout=IDLE) == "ping"
                pings += 1
                threading.Event().wait(IDLE / 3)  # well inside the idle timeout
        elapsed = time.monotonic() - started
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert elapsed > IDLE * 2 and pings >= 5               # idle never struck
    assert CAP - 0.5 <= elapsed < CAP + 2.0                # the cap did
    assert disconnect_of(stack, connection_id)["requestContext"]["disconnectStatusCode"] == 1001


def test_a_client_that_reconnects_before_the_cap_keeps_a_channel_throughout(stack):
    """What a gateway does: open the next connection, then close the old one, before the cap."""
    client = management(stack)
    started = time.monotonic()
    current, opened = open_socket(stack), time.monotonic()
    current_id = connection_id_of(current)
    delivered = replaced = 0
    try:
        while time.monotonic() - started < CAP * 2:  # two caps' worth: the cap would have struck twice
            if time.monotonic() - opened > CAP * 0.6:
                replacement, opened = open_socket(stack), time.monotonic()
                new_id = connection_id_of(replacement)
                current.close()
                current, current_id = replacement, new_id
                replaced += 1
            client.post_to_connection(ConnectionId=current_id, Data=f"n{delivered}".encode())
            assert current.recv(timeout=IDLE) == f"n{delivered}"
            delivered += 1
            current.send("ping")
            assert current.recv(timeout=IDLE) == "ping"
            threading.Event().wait(0.3)
    finally:
        current.close()
    assert replaced >= 2 and delivered > 10


def test_the_limits_default_to_api_gateways(monkeypatch):
    from devstack.websocket import WebSocketGateway

    monkeypatch.delenv("WS_IDLE_TIMEOUT_SECONDS", raising=False)
    monkeypatch.delenv("WS_MAX_CONNECTION_SECONDS", raising=False)
    gateway = WebSocketGateway(lambdas=None, domain_name="x")  # type: ignore[arg-type]
    assert (gateway.idle_timeout_seconds, gateway.max_connection_seconds) == (600, 7200)
    monkeypatch.setenv("WS_IDLE_TIMEOUT_SECONDS", "0")
    with pytest.raises(ValueError, match="WS_IDLE_TIMEOUT_SECONDS"):
        WebSocketGateway(lambdas=None, domain_name="x")  # type: ignore[arg-type]
