"""A small HTTP client for the control plane: JSON in and out, bearer key, retries with jitter.

Standard library only (the agent runs on machines we do not control), one
keep-alive connection per thread. Transient failures (connection errors, 429,
500, 502, 503, 504) are retried with exponential backoff and full jitter,
honouring Retry-After; every other status is returned to the caller as an
ApiError with the contract's error code.
"""
from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("agent.client")

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    """A non-2xx answer: `status`, the contract's `code` and `message`."""

    def __init__(self, status: int, code: str, message: str, body: Any = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.body = status, code, message, body


class Stopped(Exception):
    """The client was closed (the agent is stopping, or was killed): no more requests."""


@dataclass
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n))."""

    base: float = 0.2
    cap: float = 10.0
    attempts: int = 6

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        jittered = random.uniform(0, min(self.cap, self.base * 2 ** attempt))
        return max(jittered, retry_after or 0.0)


class Client:
    def __init__(self, url: str, api_key: str, timeout: float = 30, backoff: Backoff | None = None,
                 on_request: Callable[[str, str, float, int], None] | None = None):
        parsed = urllib.parse.urlsplit(url.rstrip("/"))
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url}")
        self._scheme, self._netloc, self._prefix = parsed.scheme, parsed.netloc, parsed.path
        self.api_key = api_key
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.on_request = on_request  # (method, path, seconds, status) after every attempt: metrics
        self._local = threading.local()
        self._closed = threading.Event()

    # --- plumbing -------------------------------------------------------------

    def close(self) -> None:
        """Refuse every further request (in-flight ones finish)."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = cls(self._netloc, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _once(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, dict, bytes]:
        for reuse in (True, False):
            conn = self._connection(fresh=not reuse)
            try:
                conn.request(method, self._prefix + path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if not reuse:
                    raise
                # A kept-alive connection the server closed meanwhile: once more on a new one.
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None,
                headers: dict | None = None, retry: bool = True) -> Any:
        """The decoded JSON body (None for 204); ApiError for a final non-2xx."""
        if query:
            path += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        h = {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json", **(headers or {})}
        attempt = 0
        while True:
            if self.closed:
                raise Stopped()
            started = time.monotonic()
            retry_after = None
            try:
                status, rh, raw = self._once(method, path, data, h)
            except (OSError, http.client.HTTPException) as e:
                self._connection(fresh=True)
                status, rh, raw, error = 0, {}, b"", e
            else:
                error = None
            if self.on_request is not None:
                self.on_request(method, path.split("?")[0], time.monotonic() - started, status)
            if status and status < 400:
                return json.loads(raw) if raw else None
            transient = status == 0 or status in TRANSIENT_STATUS
            if not (retry and transient and attempt + 1 < self.backoff.attempts):
                if status == 0:
                    raise ConnectionError(f"{method} {path}: {error}") from error
                raise _api_error(status, raw)
            if rh.get("retry-after"):
                try:
                    retry_after = float(rh["retry-after"])
                except ValueError:
                    retry_after = None
            delay = self.backoff.delay(attempt, retry_after)
            log.info("%s %s: %s, retrying in %.2fs", method, path, status or error, delay)
            if self._closed.wait(delay):
                raise Stopped()
            attempt += 1

    # --- the API ---------------------------------------------------------------

    def register_agent(self, name: str, pools: list[str] | None = None, tags: Any = None,
                       metadata: dict | None = None) -> dict:
        body = {"name": name, "pools": pools or []}
        if tags is not None:
            body["tags"] = tags
        if metadata is not None:
            body["metadata"] = metadata
        return self.request("POST", "/agents", body)

    def poll(self, agent_id: str, max_jobs: int = 1) -> dict:
        return self.request("GET", "/jobs/poll", query={"agentId": agent_id, "max": max_jobs})

    def progress(self, agent_id: str, job_id: str, run_id: str, percent: float, message: str | None = None) -> None:
        body = {"jobId": job_id, "runId": run_id, "agentId": agent_id, "percent": percent}
        if message is not None:
            body["message"] = message
        self.request("POST", "/jobs/progress", body)

    def complete(self, agent_id: str, job_id: str, run_id: str, status: str = "COMPLETED", result: Any = None,
                 error: Any = None) -> None:
        body: dict[str, Any] = {"jobId": job_id, "runId": run_id, "agentId": agent_id, "status": status}
        if result is not None:
            body["result"] = result
        if error is not None:
            body["error"] = error
        self.request("POST", "/jobs/complete", body)

    def heartbeat(self, agent_id: str) -> None:
        self.request("POST", f"/agents/{agent_id}/heartbeat")

    # Operator calls, for tools and tests.
    def create_job(self, type: str, payload: Any = None, agent_id: str | None = None, pool: str | None = None,
                   idempotency_key: str | None = None, **options: Any) -> dict:
        body = {"type": type, "payload": payload if payload is not None else {}, **options}
        if agent_id is not None:
            body["agentId"] = agent_id
        if pool is not None:
            body["pool"] = pool
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        # Without an Idempotency-Key a retried create could queue the job twice.
        return self.request("POST", "/jobs", body, headers=headers, retry=idempotency_key is not None)

    def get_job(self, job_id: str) -> dict:
        return self.request("GET", f"/jobs/{job_id}")

    def cancel_job(self, job_id: str) -> dict:
        return self.request("POST", f"/jobs/{job_id}/cancel")


def _api_error(status: int, raw: bytes) -> ApiError:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    error = body.get("error", {}) if isinstance(body, dict) else {}
    return ApiError(status, error.get("code", "HTTP_%d" % status), error.get("message", raw[:200].decode(errors="replace")),
                    body)
