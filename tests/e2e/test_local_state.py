"""The local stack keeps its state across restarts (issue 8): Ctrl-C loses nothing,
kill -9 loses nothing acknowledged either (the journal, issue 18; the burst of
kills is tests/e2e/test_local_journal.py), --fresh (make run FRESH=1) starts empty.

Each start is a real `python -m devstack` on the same port and state directory,
as a developer's `make run` would be.
"""
from __future__ import annotations

import signal
import socket
import time

import pytest

from devstack.testing import running_devstack
from tests.e2e.client import call

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _new_job(url: str, key: str, name: str) -> str:
    reply = call(url, "POST", "/jobs", key, {"pool": "state", "type": name, "payload": {"n": name}})
    assert reply.status == 201, reply.json
    return reply.json["jobId"]


def test_state_survives_ctrl_c_and_kill_9_and_fresh_starts_empty(tmp_path):
    state, port = tmp_path / "state", _free_port()

    with running_devstack(state_dir=state, port=port) as first:
        root = first.admin_api_key
        reply = call(first.url, "POST", "/keys", root, {"name": "ops", "scope": "operator"})
        assert reply.status == 201, reply.json
        operator = reply.json["apiKey"]
        before_ctrl_c = _new_job(first.url, operator, "before-ctrl-c")
        assert first.stop(signal.SIGINT) == 0, first.log_tail()
    assert not first.ready_file.exists()  # removed on exit: no script reads a dead stack's key

    with running_devstack(state_dir=state, port=port) as second:
        assert second.admin_api_key == root  # the seeded root key is the same one
        job = call(second.url, "GET", f"/jobs/{before_ctrl_c}", operator)
        assert job.status == 200 and job.json["status"] == "QUEUED", job.json
        before_kill = _new_job(second.url, operator, "before-kill")
        second.stop(signal.SIGKILL)  # at once: acknowledged means on disk (the journal)

    with running_devstack(state_dir=state, port=port) as third:
        for job_id in (before_ctrl_c, before_kill):
            assert call(third.url, "GET", f"/jobs/{job_id}", operator).status == 200, third.log_tail()
        listed = call(third.url, "GET", "/jobs?limit=10", operator).json["items"]
        assert {j["jobId"] for j in listed} == {before_ctrl_c, before_kill}

    with running_devstack(state_dir=state, port=port, fresh=True) as fresh:
        assert call(fresh.url, "GET", "/jobs", operator).status == 401  # that key is gone with the state
        assert call(fresh.url, "GET", "/jobs", fresh.admin_api_key).json["items"] == []


def test_a_running_agent_keeps_working_across_a_stack_restart(tmp_path):
    from agent import Agent, Backoff

    state, port = tmp_path / "state", _free_port()
    env = {"JOBS_IDLE_POLL_SECONDS": "1"}

    def completed(url: str, key: str, job_id: str) -> bool:
        return call(url, "GET", f"/jobs/{job_id}", key).json.get("status") == "COMPLETED"

    def wait_until(predicate, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)  # polling a condition, not waiting for time to pass

    with running_devstack(state_dir=state, port=port, env=env) as first:
        operator = call(first.url, "POST", "/keys", first.admin_api_key, {"name": "ops", "scope": "operator"}).json[
            "apiKey"]
        agent = Agent.register(first.url, operator, "survivor", pools=["state"],
                               handlers={"echo": lambda job: {"echo": job.payload}},
                               backoff=Backoff(base=0.2, cap=1.0))
        agent.client.backoff = Backoff(base=0.2, cap=1.0, attempts=3)
        agent.start()
        try:
            before = call(first.url, "POST", "/jobs", operator, {"pool": "state", "type": "echo", "payload": 1}).json
            wait_until(lambda: completed(first.url, operator, before["jobId"]), "the first job")
            assert first.stop(signal.SIGINT) == 0
            with running_devstack(state_dir=state, port=port, env=env) as second:
                after = call(second.url, "POST", "/jobs", operator, {"pool": "state", "type": "echo", "payload": 2}).json
                wait_until(lambda: completed(second.url, operator, after["jobId"]), "the job queued after the restart")
        finally:
            agent.stop(wait=False)
    assert agent.stats["completed"] == 2
