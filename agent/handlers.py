"""Built-in job handlers of the reference agent (the README tour and the end-to-end tests use them).

  sleep  {"seconds": 1.0, "steps": 4}   report progress `steps` times over `seconds`, return {"slept": seconds}
  echo   {...}                          one progress report, return the payload
  fail   {"message": "..."}             raise: the job is FAILED with HANDLER_ERROR
"""
from __future__ import annotations

from typing import Any

from agent.worker import JobContext


def sleep(job: JobContext) -> dict:
    payload = job.payload if isinstance(job.payload, dict) else {}
    seconds = float(payload.get("seconds", 1.0))
    steps = max(1, int(payload.get("steps", 4)))
    for step in range(steps):
        job.progress(round(100 * step / steps, 1), f"step {step + 1} of {steps}")
        job.sleep(seconds / steps)
    return {"slept": seconds}


def echo(job: JobContext) -> Any:
    job.progress(50, "echoing")
    return job.payload


def fail(job: JobContext) -> None:
    payload = job.payload if isinstance(job.payload, dict) else {}
    raise RuntimeError(payload.get("message", "asked to fail"))


BUILTIN = {"sleep": sleep, "echo": echo, "fail": fail}
