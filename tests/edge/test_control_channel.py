"""The gateway's command handling against a real tiny HTTP control plane: each command runs and is acked once."""
from __future__ import annotations

import threading

from tests.edge.fake_control_plane import FakeControlPlane
from tests.edge.test_gateway import make_gateway

import pytest


@pytest.fixture
def cp():
    fake = FakeControlPlane()
    yield fake
    fake.close()


def test_a_command_delivered_twice_runs_and_is_acked_once(tmp_path, cp):
    gateway = make_gateway(tmp_path, cp.url)
    runs = []
    gateway.control.register("count", lambda payload: runs.append(payload) or {"n": len(runs)})
    try:
        command = {"commandId": "c1", "type": "count", "payload": {"x": 1}}
        assert gateway.control.handle(command) == "acked"
        assert gateway.control.handle(command) == "duplicate"
        # concurrent deliveries (the socket and a poll at once)
        threads = [threading.Thread(target=gateway.control.handle, args=(command,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(runs) == 1 and [a[0] for a in cp.acks] == ["c1"]
        assert cp.acks[0][1] == {"status": "acked", "result": {"n": 1}}
    finally:
        gateway.stop()


def test_an_ack_that_did_not_get_through_is_resent_without_running_again(tmp_path, cp):
    gateway = make_gateway(tmp_path, cp.url)
    runs = []
    gateway.control.register("count", lambda payload: runs.append(1) or {"ok": True})
    try:
        cp.close()  # the control plane is gone while the command runs
        assert gateway.control.handle({"commandId": "c2", "type": "count"}) == "ack-pending"
        revived = FakeControlPlane()
        gateway.cp.port = int(revived.url.rsplit(":", 1)[1])
        gateway.cp.close()
        try:
            assert gateway.control.handle({"commandId": "c2", "type": "count"}) == "acked"
            assert runs == [1] and [a[0] for a in revived.acks] == ["c2"]
        finally:
            revived.close()
        # survives a restart too: the outcome is in the buffer
        gateway.stop()
        again = make_gateway(tmp_path, cp.url)
        try:
            assert again.control.handle({"commandId": "c2", "type": "count"}) == "duplicate"
        finally:
            again.stop()
    finally:
        gateway.stop()


def test_polling_runs_pending_commands_and_failures_are_acked_failed(tmp_path, cp):
    gateway = make_gateway(tmp_path, cp.url)
    try:
        cp.pending_commands = [{"commandId": "p1", "type": "ping"},
                               {"commandId": "p2", "type": "set-log-level", "payload": {"level": "LOUD"}},
                               {"commandId": "p3", "type": "nope"}]
        assert gateway.control.poll() == 3
        acks = dict(cp.acks)
        assert acks["p1"]["status"] == "acked" and acks["p1"]["result"]["pong"] is True
        assert acks["p2"]["status"] == "failed" and "level" in acks["p2"]["result"]["error"]
        assert acks["p3"]["status"] == "failed"
        assert gateway.control.poll() == 0  # nothing pending any more
    finally:
        gateway.stop()
