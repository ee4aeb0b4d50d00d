"""Make real failures through the public API (handler tests and the local stack share this).

`call(method, path, key, body) -> (status, json)` is the transport: the Chalice
test client in handler tests, real HTTP in e2e tests.
"""
from __future__ import annotations

import uuid
from typing import Any, Callable

Call = Callable[[str, str, str, Any], tuple[int, Any]]


class FailureMaker:
    def __init__(self, call: Call, operator_key: str):
        self.call = call
        self.key = operator_key
        status, agent = call("POST", "/agents", operator_key, {"name": f"ops-{uuid.uuid4().hex[:6]}"})
        assert status == 201, agent
        self.agent = agent
        status, instance = call("POST", "/instances", operator_key, {"agentId": agent["agentId"], "name": "web"})
        assert status == 201, instance
        self.instance = instance

    def failed_job(self, i: int) -> str:
        """A job that its agent reports FAILED; the error differs only by ids and numbers."""
        status, job = self.call("POST", "/jobs", self.key, {"agentId": self.agent["agentId"], "type": "build"})
        assert status == 201, job
        status, polled = self.call("GET", f"/jobs/poll?agentId={self.agent['agentId']}", self.agent["apiKey"], None)
        run = next(r for r in polled["jobs"] if r["jobId"] == job["jobId"])
        status, answer = self.call("POST", "/jobs/complete", self.agent["apiKey"], {
            "jobId": job["jobId"], "runId": run["runId"], "agentId": self.agent["agentId"], "status": "FAILED",
            "error": {"code": "EXIT_CODE", "message": f"step compile exited 2 on worker{i} after {i * 7}s (job {job['jobId']})"}})
        assert status == 204, answer
        return job["jobId"]

    def error_log(self, i: int) -> None:
        status, answer = self.call("POST", f"/instances/{self.instance['instanceId']}/logs", self.key, {"entries": [
            {"level": "ERROR", "message": f"connection to 10.0.{i}.7:5432 refused (request {uuid.uuid4()})"},
            {"level": "INFO", "message": "retrying"}]})
        assert status == 202, answer
