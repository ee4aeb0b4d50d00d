"""The reference agent (agent/) against a scripted fake control plane: protocol behaviour, fast."""
from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent import Agent, ApiError, Backoff, Client, JobStopped


class FakePlane:
    """Serves poll/progress/complete/heartbeat from a script; records every request."""

    def __init__(self):
        self.jobs: list[dict] = []
        self.requests: list[tuple[float, str, str, dict | None]] = []
        self.idle_seconds = 1
        self.progress_status = 204
        self.poll_failures: list[tuple[int, dict]] = []  # (status, headers) answered before any real poll
        self.poll_status = 200
        self.lock = threading.Lock()
        plane = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body=None, headers=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                plane.record(self, None)
                if self.path.startswith("/jobs/poll"):
                    with plane.lock:
                        if plane.poll_failures:
                            status, headers = plane.poll_failures.pop(0)
                            return self._reply(status, {"error": {"code": "UNAVAILABLE", "message": "x"}}, headers)
                        if plane.poll_status != 200:
                            return self._reply(plane.poll_status, {"error": {"code": "FORBIDDEN", "message": "no"}})
                        want = int(self.path.split("max=")[1].split("&")[0])
                        jobs, plane.jobs = plane.jobs[:want], plane.jobs[want:]
                    wait = 0 if len(jobs) == want else plane.idle_seconds
                    return self._reply(200, {"jobs": jobs, "nextPollSeconds": wait})
                self._reply(404, {"error": {"code": "NOT_FOUND", "message": "?"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                plane.record(self, body)
                if self.path == "/jobs/progress":
                    if plane.progress_status != 204:
                        return self._reply(plane.progress_status,
                                           {"error": {"code": "JOB_NOT_RUNNING", "message": "cancelled"}})
                    return self._reply(204)
                if self.path in ("/jobs/complete",) or self.path.endswith("/heartbeat"):
                    return self._reply(204)
                self._reply(404, {"error": {"code": "NOT_FOUND", "message": "?"}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, handler, body):
        with self.lock:
            self.requests.append((time.monotonic(), handler.command, handler.path.split("?")[0], body))

    def paths(self, path: str) -> list[tuple[float, dict | None]]:
        with self.lock:
            return [(t, b) for t, _, p, b in self.requests if p == path]

    def job(self, job_id: str, type: str = "t", lease: int = 60, payload=None) -> dict:
        return {"jobId": job_id, "runId": f"run-{job_id}", "type": type, "payload": payload or {}, "attempt": 1,
                "leaseExpiresAt": "2026-01-01T00:00:00.000Z", "leaseSeconds": lease}


@pytest.fixture
def plane():
    p = FakePlane()
    yield p
    p.server.shutdown()


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    raise AssertionError("timed out")


def _agent(plane, handlers, **kw) -> Agent:
    client = Client(plane.url, "key", backoff=Backoff(base=0.01, cap=0.05, attempts=4))
    return Agent(client, "A1", handlers, backoff=Backoff(base=0.01, cap=0.05), **kw)


def test_backoff_has_full_jitter_and_honours_retry_after():
    random.seed(1)
    b = Backoff(base=0.5, cap=4.0)
    delays = [b.delay(n) for n in range(10) for _ in range(20)]
    assert all(0 <= d <= 4.0 for d in delays) and len(set(delays)) > 100
    assert max(b.delay(0) for _ in range(50)) <= 0.5
    assert b.delay(0, retry_after=3.0) >= 3.0


def test_client_retries_transient_errors_then_raises_the_contract_error(plane):
    plane.poll_failures = [(503, {"Retry-After": "0"}), (429, {}), (502, {})]
    client = Client(plane.url, "key", backoff=Backoff(base=0.01, cap=0.02, attempts=5))
    assert client.poll("A1", 1) == {"jobs": [], "nextPollSeconds": 1}
    assert len(plane.paths("/jobs/poll")) == 4
    plane.poll_status = 403
    with pytest.raises(ApiError) as e:
        client.poll("A1", 1)
    assert e.value.status == 403 and e.value.code == "FORBIDDEN"
    assert len(plane.paths("/jobs/poll")) == 5  # a 403 is not retried


def test_agent_runs_a_job_reports_progress_and_completes_with_the_result(plane):
    plane.jobs = [plane.job("j1", payload={"n": 2})]

    def double(job):
        job.progress(50, "half")
        return {"doubled": job.payload["n"] * 2}

    agent = _agent(plane, {"t": double}).start()
    try:
        _wait(lambda: plane.paths("/jobs/complete"))
    finally:
        agent.stop()
    [(_, progress)] = plane.paths("/jobs/progress")
    assert progress == {"jobId": "j1", "runId": "run-j1", "agentId": "A1", "percent": 50, "message": "half"}
    [(_, done)] = plane.paths("/jobs/complete")
    assert done == {"jobId": "j1", "runId": "run-j1", "agentId": "A1", "status": "COMPLETED",
                    "result": {"doubled": 4}}


def test_agent_honours_next_poll_seconds(plane):
    plane.idle_seconds = 1
    agent = _agent(plane, {}).start()
    try:
        _wait(lambda: len(plane.paths("/jobs/poll")) >= 2, timeout=3)
    finally:
        agent.stop()
    (first, _), (second, _) = plane.paths("/jobs/poll")[:2]
    assert second - first >= 0.95


def test_a_409_on_progress_stops_the_job_without_completing_it(plane):
    plane.jobs = [plane.job("j1")]
    plane.progress_status = 409
    seen = []

    def forever(job):
        while True:
            try:
                job.progress(10)
            except JobStopped:
                seen.append("stopped")
                raise
            job.sleep(0.05)

    agent = _agent(plane, {"t": forever}).start()
    try:
        _wait(lambda: agent.stats["stopped"] == 1)
    finally:
        agent.stop()
    assert seen == ["stopped"] and plane.paths("/jobs/complete") == []
    assert len(plane.paths("/jobs/progress")) == 1  # nothing more for that run


def test_failures_unknown_types_and_403_stop(plane):
    plane.jobs = [plane.job("boom", type="explode"), plane.job("odd", type="unknown")]

    def explode(job):
        raise ValueError("kaput")

    agent = _agent(plane, {"explode": explode}, concurrency=2).start()
    try:
        _wait(lambda: len(plane.paths("/jobs/complete")) == 2)
    finally:
        agent.stop()
    done = {b["jobId"]: b for _, b in plane.paths("/jobs/complete")}
    assert done["boom"]["status"] == "FAILED" and done["boom"]["error"]["code"] == "HANDLER_ERROR"
    assert "kaput" in done["boom"]["error"]["message"]
    assert done["odd"]["error"]["code"] == "NO_HANDLER"
    plane.poll_status = 403
    stopping = _agent(plane, {}).start()
    _wait(lambda: stopping.stopping)
    stopping.stop()


def test_heartbeats_while_a_job_runs(plane):
    plane.jobs = [plane.job("slow", lease=1)]

    def slow(job):
        job.sleep(1.2)
        return None

    agent = _agent(plane, {"t": slow}).start()
    try:
        _wait(lambda: plane.paths("/jobs/complete"))
    finally:
        agent.stop()
    beats = plane.paths("/agents/A1/heartbeat")
    assert len(beats) >= 2  # every third of the 1 s lease


def test_kill_sends_nothing_more(plane):
    plane.jobs = [plane.job("k")]
    started = threading.Event()

    def long(job):
        started.set()
        while True:
            job.sleep(0.05)
            job.progress(1)

    agent = _agent(plane, {"t": long}).start()
    started.wait(3)
    agent.kill()
    time.sleep(0.1)  # a request already on the wire when it died may still land
    count = len(plane.requests)
    time.sleep(0.3)
    assert len(plane.requests) == count and plane.paths("/jobs/complete") == []
