"""Jobs end to end: the reference agent against the local stack over real HTTP, a WebSocket watching.

- a fleet: 20 agents (half sharing a pool) and 500 jobs (direct and pool) with
  concurrent polling: every job completed exactly once, none lost, direct jobs
  only on their agent, and the WebSocket saw job:progress and job:completed for each;
- an agent killed (SIGKILL, a real process) mid-job: its pool job is re-queued and
  finished by another agent, and the killed run's late progress gets 409;
- cancel mid-run: the agent's next progress gets 409 and it stops;
- bad input over HTTP: the contract's 4xx.

The stack is this module's own (`python -m devstack`, whose moto costs what a
request touches: devstack/fast_moto.py), with JOBS_IDLE_POLL_SECONDS=2
so idle agents come back quickly. The fleet runs last: its lease checks would
otherwise be drained by the same single-threaded local DynamoDB as the tests after it.
"""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agent import Agent, Client, JobContext
from agent import handlers as builtin_handlers
from devstack.testing import REPO_ROOT, running_devstack
from tests.e2e.client import call, ws_connect

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def stack():
    with running_devstack(app_module="app", env={"JOBS_IDLE_POLL_SECONDS": "2"}) as s:
        yield s


@pytest.fixture
def ops(stack) -> str:
    """An operator key of a fresh organization."""
    org = call(stack.url, "POST", "/orgs", stack.admin_api_key, {"name": "jobs e2e"}).json
    r = call(stack.url, "POST", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"})
    assert r.status == 201, r.json
    return r.json["apiKey"]


class Watcher(threading.Thread):
    """A WebSocket client (operator key) recording every job event it receives."""

    def __init__(self, url: str, key: str):
        super().__init__(daemon=True)
        self.conn = ws_connect(url, key)
        first = json.loads(self.conn.recv(timeout=10))
        assert first["event"] == "system:connected", first
        self.seen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                message = json.loads(self.conn.recv(timeout=0.5))
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - closed
                return
            job_id = message.get("data", {}).get("jobId")
            if job_id:
                with self.lock:
                    self.seen[job_id][message["event"]] += 1
                    self.log.append(message)

    def count(self, event: str) -> int:
        with self.lock:
            return sum(1 for c in self.seen.values() if c[event])

    def events_of(self, job_id: str) -> list[dict]:
        with self.lock:
            return [m for m in self.log if m["data"].get("jobId") == job_id]

    def close(self) -> None:
        self.stopping.set()
        self.join(5)
        self.conn.close()


def _wait(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _all_jobs(client: Client, query: str) -> list[dict]:
    items, token = [], None
    while True:
        page = client.request("GET", "/jobs?limit=100&" + query + (f"&nextToken={token}" if token else ""))
        items += page["items"]
        token = page["nextToken"]
        if not token:
            return items


def _start_cli_agent(stack, ops: str, name: str, pool: str, log_path: Path) -> tuple[subprocess.Popen, dict]:
    """`python -m agent` registering itself; its first stdout line is {"agentId", "apiKey"}."""
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "--url", stack.url, "--register-key", ops, "--name", name, "--pool", pool],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=open(log_path, "wb"), env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return process, json.loads(process.stdout.readline())


def test_killed_agent_job_is_requeued_and_finished_by_another(stack, ops, tmp_path):
    operator = Client(stack.url, ops)
    watcher = Watcher(stack.url, ops)
    watcher.start()
    job = operator.create_job("sleep", {"seconds": 3, "steps": 6}, pool="k", leaseSeconds=2,
                              idempotency_key="kill-1")
    doomed, identity = _start_cli_agent(stack, ops, "doomed", "k", tmp_path / "doomed.log")
    doomed_id = identity["agentId"]
    survivor = None
    try:
        running = _wait(lambda: (lambda j: j if j["status"] == "RUNNING" and "progressPercent" in j else None)(
            operator.get_job(job["jobId"])), 20, "the doomed agent to start the job")
        assert running["claimedBy"] == doomed_id
        dead_run = running["runId"]
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(5)
        killed_at = time.monotonic()
        survivor = Agent.register(stack.url, ops, "survivor", ["k"], {"sleep": _fast_sleep}).start()
        try:
            done = _wait(lambda: (lambda j: j if j["status"] == "COMPLETED" else None)(
                operator.get_job(job["jobId"])), 30, "the survivor to finish the job")
        except AssertionError as e:
            raise AssertionError(f"{e}\njob: {operator.get_job(job['jobId'])}\nsurvivor: {survivor.stats}\n"
                                 f"{stack.log_tail(40)}") from None
        requeue_delay = time.monotonic() - killed_at
        assert done["claimedBy"] == survivor.agent_id and done["attempts"] == 2 and done["runId"] != dead_run
        # The killed run wakes up late: 409, so it would stop.
        r = call(stack.url, "POST", "/jobs/progress", identity["apiKey"],
                 {"jobId": job["jobId"], "runId": dead_run, "agentId": doomed_id, "percent": 99})
        assert r.status == 409 and r.json["error"]["code"] == "JOB_NOT_RUNNING"
        _wait(lambda: watcher.seen[job["jobId"]]["job:completed"], 10, "job:completed on the WebSocket")
        names = [m["event"] for m in watcher.events_of(job["jobId"])]
        assert names.count("job:queued") == 2  # created, then re-queued after the lease ran out
        requeued = [m for m in watcher.events_of(job["jobId"]) if m["event"] == "job:queued"][1]["data"]
        assert requeued["reason"] == "LEASE_EXPIRED"
        assert requeue_delay < 15, requeue_delay  # a 2 s lease, checked within a few seconds
    finally:
        if doomed.poll() is None:
            doomed.kill()
        if survivor is not None:
            survivor.stop(wait=False)
        watcher.close()


def _fast_sleep(job: JobContext) -> dict:
    job.progress(10, "taking over")
    job.sleep(0.5)
    job.progress(90, "nearly")
    return {"finishedBy": job.agent.agent_id}


def test_cancel_mid_run_stops_the_agent_at_its_next_progress(stack, ops):
    operator = Client(stack.url, ops)
    events: list[tuple[str, dict]] = []
    agent = Agent.register(stack.url, ops, "cancellable", [], {"sleep": builtin_handlers.sleep},
                           on_event=lambda n, d: events.append((n, d)))
    job = operator.create_job("sleep", {"seconds": 20, "steps": 40}, agent_id=agent.agent_id,
                              idempotency_key="cancel-1")
    agent.start()
    try:
        _wait(lambda: "progressPercent" in operator.get_job(job["jobId"]), 15, "the job to report progress")
        cancelled_at = time.monotonic()
        assert operator.cancel_job(job["jobId"])["status"] == "CANCELLED"
        stopped = _wait(lambda: [d for n, d in events if n == "stopped" and d["jobId"] == job["jobId"]], 10,
                        "the agent to stop the job")
        assert time.monotonic() - cancelled_at < 5
        assert "409" in stopped[0]["reason"]
        final = operator.get_job(job["jobId"])
        assert final["status"] == "CANCELLED" and "result" not in final
        assert agent.stats["completed"] == 0 and agent.stats["stopped"] == 1
    finally:
        agent.stop(wait=False)


def test_bad_input_gets_the_contracts_4xx(stack, ops):
    a = call(stack.url, "POST", "/agents", ops, {"name": "a", "pools": ["b"]}).json
    b = call(stack.url, "POST", "/agents", ops, {"name": "b"}).json
    job = call(stack.url, "POST", "/jobs", ops, {"agentId": a["agentId"], "type": "t"}).json
    run = call(stack.url, "GET", f"/jobs/poll?agentId={a['agentId']}", a["apiKey"]).json["jobs"][0]
    progress = {"jobId": job["jobId"], "runId": run["runId"], "agentId": a["agentId"], "percent": 10}

    def expect(status, code, field, method, path, key, body=None):
        r = call(stack.url, method, path, key, body)
        assert r.status == status, (path, body, r.json)
        assert r.json["error"]["code"] == code
        if field:
            assert r.json["error"]["details"][0]["field"] == field
        return r

    expect(400, "VALIDATION_ERROR", "percent", "POST", "/jobs/progress", a["apiKey"], {**progress, "percent": 150})
    expect(400, "VALIDATION_ERROR", "runId", "POST", "/jobs/progress", a["apiKey"],
           {k: v for k, v in progress.items() if k != "runId"})
    expect(403, "FORBIDDEN", None, "POST", "/jobs/progress", b["apiKey"], progress)  # another agent's key
    expect(400, "VALIDATION_ERROR", "agentId", "POST", "/jobs", ops, {"type": "t"})
    expect(400, "VALIDATION_ERROR", "pool", "POST", "/jobs", ops, {"type": "t", "agentId": a["agentId"], "pool": "b"})
    expect(413, "PAYLOAD_TOO_LARGE", "payload", "POST", "/jobs", ops,
           {"type": "t", "pool": "b", "payload": {"blob": "x" * (65 * 1024)}})
    expect(413, "PAYLOAD_TOO_LARGE", None, "POST", "/jobs", ops,
           {"type": "t", "pool": "b", "payload": {"blob": "x" * (257 * 1024)}})
    assert call(stack.url, "POST", "/jobs/progress", a["apiKey"], progress).status == 204
    assert call(stack.url, "POST", f"/agents/{a['agentId']}/deactivate", ops).status == 200
    for method, path, body in (("POST", "/jobs/progress", progress),
                               ("POST", "/jobs/complete", {**{k: v for k, v in progress.items() if k != "percent"},
                                                           "status": "COMPLETED"}),
                               ("GET", f"/jobs/poll?agentId={a['agentId']}", None),
                               ("POST", f"/agents/{a['agentId']}/heartbeat", None)):
        expect(403, "FORBIDDEN", None, method, path, a["apiKey"], body)  # an inactive agent


def test_fleet_of_20_agents_runs_500_jobs_exactly_once(stack, ops):
    operator = Client(stack.url, ops)
    watcher = Watcher(stack.url, ops)
    watcher.start()
    ran: dict[str, list[str]] = collections.defaultdict(list)
    ran_lock = threading.Lock()

    def work(job: JobContext) -> dict:
        with ran_lock:
            ran[job.job_id].append(job.agent.agent_id)
        job.progress(50, "half way")
        return {"by": job.agent.agent_id}

    with ThreadPoolExecutor(10) as pool:
        agents = list(pool.map(lambda i: Agent.register(stack.url, ops, f"fleet-{i}", ["shared"] if i < 10 else [],
                                                        {"work": work}, concurrency=2), range(20)))
    pool_members = {a.agent_id for a in agents[:10]}

    def create(i: int) -> tuple[str, str | None]:
        # Long leases: this test is about exactly-once claims under concurrent polling (leases are the
        # kill test's); 500 lease checks firing mid-test would only compete for the local DynamoDB.
        options = {"idempotency_key": f"fleet-{i}", "leaseSeconds": 600}
        if i % 2:
            return operator.create_job("work", {"i": i}, pool="shared", priority=i % 5, **options)["jobId"], None
        target = agents[(i // 2) % 20].agent_id
        return operator.create_job("work", {"i": i}, agent_id=target, **options)["jobId"], target

    try:
        with ThreadPoolExecutor(8) as pool:
            created = list(pool.map(create, range(500)))
        started = time.monotonic()
        for agent in agents:  # all at once: twenty pollers, ten of them on one pool's queue
            agent.start()
        direct = {job_id: target for job_id, target in created if target}
        pooled = {job_id for job_id, target in created if not target}
        assert len(direct) == len(pooled) == 250
        _wait(lambda: sum(a.stats["completed"] for a in agents) >= 500, 180, "500 completions")
        elapsed = time.monotonic() - started
        _wait(lambda: watcher.count("job:completed") >= 500, 30, "job:completed on the WebSocket for every job")
    finally:
        for agent in agents:
            agent.stop(wait=False)
        watcher.close()

    # Every job ran exactly once, on the right agent.
    assert set(ran) == set(direct) | pooled
    twice = {j: who for j, who in ran.items() if len(who) != 1}
    assert not twice, twice
    assert all(ran[j] == [target] for j, target in direct.items())
    assert all(ran[j][0] in pool_members for j in pooled)
    assert len({ran[j][0] for j in pooled}) > 1  # the pool's work was shared
    # None lost: the control plane agrees, and completed each job once.
    completed = _all_jobs(operator, "status=COMPLETED")
    assert {j["jobId"] for j in completed} >= set(ran)
    assert all(j["attempts"] == 1 for j in completed if j["jobId"] in ran)
    assert _all_jobs(operator, "status=QUEUED") == [] and _all_jobs(operator, "status=RUNNING") == []
    assert sum(a.stats["completed"] for a in agents) == 500
    assert sum(a.stats["stopped"] + a.stats["failed"] for a in agents) == 0
    # The WebSocket saw the progress and the completion of every job.
    for job_id in ran:
        seen = watcher.seen[job_id]
        assert seen["job:progress"] >= 1 and seen["job:completed"] == 1, (job_id, seen)
    print(f"\n500 jobs by 20 agents in {elapsed:.1f}s ({500 / elapsed:.1f} jobs/s)")
