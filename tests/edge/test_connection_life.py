"""The control channel's connection life against a real WebSocket server (websockets' own): application pings
inside the idle limit, renewal with overlap (the new connection is open before the old one closes), a
`command:issued` delivered again and again across renewals run once, and config:changed reaching its handler."""
from __future__ import annotations

import json
import threading
import time

import pytest
from websockets.sync.server import serve

from tests.edge.fake_control_plane import FakeControlPlane
from tests.edge.test_adapters import wait_for
from tests.edge.test_gateway import make_gateway


class Server:
    """Records each connection's open and close times and the messages its client sent; can broadcast."""

    def __init__(self) -> None:
        self.connections: list[dict] = []
        self.lock = threading.Lock()
        self.server = serve(self.handler, "127.0.0.1", 0, process_request=self.handshake)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/ws"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def handshake(connection, request) -> None:
        # Before the 101 goes out: the client cannot have seen this connection open (and closed its old one)
        # earlier. The handler itself starts on its own thread, possibly later than that.
        connection.opened_at = time.monotonic()

    def handler(self, ws) -> None:
        entry = {"opened": ws.opened_at, "closed": None, "messages": [], "ws": ws}
        with self.lock:
            self.connections.append(entry)
        try:
            for message in ws:
                entry["messages"].append((time.monotonic(), json.loads(message)))
        finally:
            entry["closed"] = time.monotonic()

    def open_now(self) -> list[dict]:
        with self.lock:
            return [c for c in self.connections if c["closed"] is None]

    def send_to_all_open(self, event: dict) -> int:
        sent = 0
        for c in self.open_now():
            try:
                c["ws"].send(json.dumps(event))
                sent += 1
            except Exception:  # noqa: BLE001 - closing meanwhile
                pass
        return sent

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def ws_server():
    server = Server()
    yield server
    server.close()


@pytest.fixture
def cp():
    fake = FakeControlPlane()
    yield fake
    fake.close()


def test_pings_inside_the_idle_limit_and_renews_with_overlap(tmp_path, cp, ws_server):
    gateway = make_gateway(tmp_path, cp.url, ws_url=ws_server.url, ws_ping_seconds=0.2, ws_renew_seconds=0.8)
    try:
        wait_for(lambda: len([c for c in ws_server.connections if c["closed"]]) >= 3, timeout=20,
                 what="three renewals")
        connections = sorted(ws_server.connections, key=lambda c: c["opened"])
        for old, new in zip(connections, connections[1:], strict=False):
            if old["closed"] is None:
                continue
            # the next connection was open before the old one closed: never a moment without one
            assert new["opened"] < old["closed"], (new["opened"], old["closed"])
        first = connections[0]
        pings = [t for t, m in first["messages"] if m == {"action": "ping"}]
        assert pings, "no application ping"
        gaps = [b - a for a, b in zip([first["opened"], *pings], pings, strict=False)]
        assert max(gaps) < 0.2 + 0.5  # a ping at least every ping interval (+ scheduling slack)
        status = gateway.control.status()
        assert status["renewals"] >= 3 and status["pings"] >= 1
    finally:
        gateway.stop()


def test_a_command_delivered_again_and_again_across_renewals_runs_once(tmp_path, cp, ws_server):
    gateway = make_gateway(tmp_path, cp.url, ws_url=ws_server.url, ws_ping_seconds=5, ws_renew_seconds=0.3)
    runs = []
    gateway.control.register("count", lambda payload: runs.append(1) or {"n": len(runs)})
    fetches = []
    gateway.control.on_event["config:changed"] = fetches.append
    try:
        wait_for(lambda: len(ws_server.open_now()) == 1, what="connected")
        event = {"event": "command:issued", "data": {"commandId": "c-again", "type": "count"}}
        most_open = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # every socket open, through several renewals (and their overlaps)
            most_open = max(most_open, len(ws_server.open_now()))
            ws_server.send_to_all_open(event)
            time.sleep(0.01)
        assert gateway.control.renewals >= 3
        wait_for(lambda: [a[0] for a in cp.acks] == ["c-again"], what="one ack")
        assert runs == [1] and len(cp.acks) == 1
        assert most_open <= 2  # an overlap is two connections for a moment, never a pile-up

        gateway.control.renew_seconds = 3600
        wait_for(lambda: len(ws_server.open_now()) == 1 and
                 gateway.control.connections == len(ws_server.connections), what="one settled connection")
        ws_server.send_to_all_open({"event": "config:changed", "data": {"agentId": "agent-1", "version": 9}})
        wait_for(lambda: fetches, what="config:changed handled")
        assert fetches[0] == {"agentId": "agent-1", "version": 9}
        assert runs == [1] and len(cp.acks) == 1
    finally:
        gateway.stop()
