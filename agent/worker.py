"""The agent runtime: poll, run a handler per job type, report progress, heartbeat, complete.

    agent = Agent(client, agent_id, {"build": build}, concurrency=2)
    agent.run()            # until agent.stop() (or start() for a background thread)

    def build(job: JobContext) -> dict:
        for step in range(10):
            ...
            job.progress(step * 10, f"step {step}")   # raises JobStopped on 409: stop working
        return {"artifact": "..."}                    # COMPLETED with this result; raise = FAILED

Polling honours the server's nextPollSeconds and asks for at most as many jobs
as there are free slots. While jobs run, a heartbeat every third of the
shortest lease keeps their leases alive even when a handler reports no
progress. Any transient error backs off with jitter. A 409 on progress or
completion means the run is over (cancelled, timed out, re-queued): the handler
is stopped and nothing more is sent for that run. A 403 means this agent is
inactive (or the key is wrong): the agent stops.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from agent.client import ApiError, Backoff, Client, Stopped

log = logging.getLogger("agent")

Handler = Callable[["JobContext"], Any]


class JobStopped(Exception):
    """Raised inside a handler when the control plane says its run is over (or the agent is stopping)."""


@dataclass
class JobContext:
    """What a handler gets: the job and the means to report on it."""

    agent: "Agent"
    job_id: str
    run_id: str
    type: str
    payload: Any
    attempt: int
    lease_seconds: int
    stopped: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (renews the lease). Raises JobStopped when the run is over."""
        self.check()
        try:
            self.agent.client.progress(self.agent.agent_id, self.job_id, self.run_id, percent, message)
        except ApiError as e:
            if e.status in (403, 404, 409):
                self.stop(f"progress answered {e.status} {e.code}")
                raise JobStopped(self.reason) from None
            log.warning("progress of %s failed: %s (the lease may still be renewed by heartbeats)", self.job_id, e)
        except ConnectionError as e:
            log.warning("progress of %s failed: %s", self.job_id, e)
        except Stopped:
            self.stop("agent stopping")
            raise JobStopped(self.reason) from None

    def check(self) -> None:
        """Raise JobStopped if this run should stop (for handlers that do not report progress often)."""
        if self.agent.stopping:
            self.stop("agent stopping")
        if self.stopped.is_set():
            raise JobStopped(self.reason)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up (raising JobStopped) as soon as the run or the agent stops."""
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.agent._stopping.wait(min(left, 0.2))

    def stop(self, reason: str) -> None:
        if not self.stopped.is_set():
            self.reason = reason
            self.stopped.set()


class Agent:
    def __init__(self, client: Client, agent_id: str, handlers: dict[str, Handler], concurrency: int = 1,
                 backoff: Backoff | None = None, on_event: Callable[[str, dict], None] | None = None):
        self.client = client
        self.agent_id = agent_id
        self.handlers = dict(handlers)
        self.concurrency = max(1, concurrency)
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.on_event = on_event  # ("claimed" | "completed" | "failed" | "stopped", details): logs, tests
        self._stopping = threading.Event()
        self._slots = threading.Semaphore(self.concurrency)
        self._running: dict[str, JobContext] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"job-{agent_id[-6:]}")
        self._thread: threading.Thread | None = None
        self._heartbeat: threading.Thread | None = None
        self.stats = {"claimed": 0, "completed": 0, "failed": 0, "stopped": 0, "polls": 0, "errors": 0}

    @classmethod
    def register(cls, url: str, operator_key: str, name: str, pools: list[str] | None = None,
                 handlers: dict[str, Handler] | None = None, **kwargs: Any) -> "Agent":
        """Register a new agent with an operator key and return it, running as that agent with its own key."""
        created = Client(url, operator_key).register_agent(name, pools)
        return cls(Client(url, created["apiKey"]), created["agentId"], handlers or {}, **kwargs)

    # --- lifecycle -----------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> "Agent":
        self._thread = threading.Thread(target=self.run, name=f"agent-{self.agent_id[-6:]}", daemon=True)
        self._thread.start()
        return self

    def stop(self, wait: bool = True, timeout: float = 30) -> None:
        """Stop polling; running handlers are told to stop (JobStopped at their next progress/check)."""
        self._stopping.set()
        with self._lock:
            for ctx in self._running.values():
                ctx.stop("agent stopping")
        if wait and self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=wait)

    def kill(self) -> None:
        """Die at once, like kill -9: nothing more is sent, not even a completion (tests)."""
        self.client.close()
        self._stopping.set()

    def run(self) -> None:
        self._heartbeat = threading.Thread(target=self._heartbeats, name=f"hb-{self.agent_id[-6:]}", daemon=True)
        self._heartbeat.start()
        failures = 0
        while not self.stopping:
            if not self._slots.acquire(timeout=0.5):
                continue  # every slot busy: wait for one
            free = 1
            while free < self.concurrency and self._slots.acquire(blocking=False):
                free += 1
            try:
                answer = self.client.poll(self.agent_id, free)
                self.stats["polls"] += 1
                failures = 0
            except Stopped:
                self._release(free)
                break
            except ApiError as e:
                self._release(free)
                if e.status in (401, 403):
                    log.error("agent %s cannot poll (%s): stopping", self.agent_id, e)
                    self._stopping.set()
                    break
                failures = self._backoff(failures, e)
                continue
            except ConnectionError as e:
                self._release(free)
                failures = self._backoff(failures, e)
                continue
            jobs = answer.get("jobs", [])
            self._release(free - len(jobs))
            for job in jobs:
                self._start_job(job)
            wait = float(answer.get("nextPollSeconds", 1))
            if wait > 0:
                self._stopping.wait(wait)

    def _release(self, n: int) -> None:
        for _ in range(n):
            self._slots.release()

    def _backoff(self, failures: int, error: Exception) -> int:
        self.stats["errors"] += 1
        delay = self.backoff.delay(failures)
        log.warning("poll failed (%s); backing off %.1fs", error, delay)
        self._stopping.wait(delay)
        return failures + 1

    # --- jobs ------------------------------------------------------------------------

    def _start_job(self, job: dict) -> None:
        ctx = JobContext(self, job["jobId"], job["runId"], job["type"], job.get("payload"), job.get("attempt", 1),
                         int(job.get("leaseSeconds", 60)))
        with self._lock:
            self._running[ctx.job_id] = ctx
        self.stats["claimed"] += 1
        self._emit("claimed", {"jobId": ctx.job_id, "runId": ctx.run_id, "attempt": ctx.attempt})
        try:
            self._pool.submit(self._run_job, ctx)
        except RuntimeError:  # the pool is shut down: we are stopping; the lease will return the job
            self._finish(ctx)

    def _run_job(self, ctx: JobContext) -> None:
        try:
            handler = self.handlers.get(ctx.type)
            if handler is None:
                self._complete(ctx, "FAILED", error={"code": "NO_HANDLER",
                                                     "message": f"this agent has no handler for {ctx.type!r}"})
                return
            try:
                result = handler(ctx)
            except JobStopped:
                self.stats["stopped"] += 1
                self._emit("stopped", {"jobId": ctx.job_id, "runId": ctx.run_id, "reason": ctx.reason})
                log.info("job %s run %s stopped: %s", ctx.job_id, ctx.run_id, ctx.reason)
                return
            except Exception as e:  # noqa: BLE001 - a handler failure fails the job, not the agent
                log.exception("job %s failed", ctx.job_id)
                self._complete(ctx, "FAILED", error={"code": "HANDLER_ERROR", "message": f"{type(e).__name__}: {e}"})
                return
            self._complete(ctx, "COMPLETED", result=result)
        finally:
            self._finish(ctx)

    def _finish(self, ctx: JobContext) -> None:
        with self._lock:
            self._running.pop(ctx.job_id, None)
        self._slots.release()

    def _complete(self, ctx: JobContext, status: str, result: Any = None, error: Any = None) -> None:
        if ctx.stopped.is_set() and self.client.closed:
            return
        for attempt in range(self.backoff.attempts):
            try:
                self.client.complete(self.agent_id, ctx.job_id, ctx.run_id, status, result, error)
                self.stats["completed" if status == "COMPLETED" else "failed"] += 1
                self._emit(status.lower(), {"jobId": ctx.job_id, "runId": ctx.run_id})
                return
            except Stopped:
                return
            except ApiError as e:
                if e.status in (403, 404, 409):  # the run is over (or we are no longer allowed): drop it
                    self.stats["stopped"] += 1
                    self._emit("stopped", {"jobId": ctx.job_id, "runId": ctx.run_id, "reason": f"complete {e.code}"})
                    log.info("completion of %s refused: %s", ctx.job_id, e)
                    return
                error_seen: Exception = e
            except ConnectionError as e:
                error_seen = e
            delay = self.backoff.delay(attempt)
            log.warning("completing %s failed (%s); retrying in %.1fs", ctx.job_id, error_seen, delay)
            time.sleep(delay)
        log.error("gave up completing %s; its lease will expire and the job will be re-queued", ctx.job_id)

    # --- heartbeats ------------------------------------------------------------------

    def _heartbeats(self) -> None:
        """While jobs run, one heartbeat per third of the shortest lease (with jitter)."""
        while not self.stopping:
            with self._lock:
                leases = [ctx.lease_seconds for ctx in self._running.values()]
            if not leases:
                self._stopping.wait(0.25)
                continue
            interval = max(0.2, min(leases) / 3) * random.uniform(0.85, 1.0)
            if self._stopping.wait(interval):
                return
            with self._lock:
                busy = bool(self._running)
            if not busy:
                continue
            try:
                self.client.heartbeat(self.agent_id)
            except Stopped:
                return
            except ApiError as e:
                if e.status in (401, 403):
                    log.error("heartbeat refused (%s): stopping", e)
                    self.stop(wait=False)
                    return
                log.warning("heartbeat failed: %s", e)
            except ConnectionError as e:
                log.warning("heartbeat failed: %s", e)

    def _emit(self, name: str, details: dict) -> None:
        if self.on_event is not None:
            try:
                self.on_event(name, details)
            except Exception:  # noqa: BLE001 - an observer must not break the agent
                log.exception("on_event failed")
