"""Powertools Logger, Metrics and Tracer: one of each for the whole control plane.

- `logger`: structured JSON logs; every handler appends the request's traceId
  (`bind_trace`), so one trace can be followed across HTTP, WebSocket, stream
  and queue handlers.
- `count(name)`: one EMF metric (CloudWatch reads it from the log line; no
  API call, no flush to forget). The counters an operator watches:
  JobsClaimed, LeasesExpired, RunsTimedOut, FanoutSent, FanoutGone, Denials.
- `tracer`: X-Ray segments on handlers; off outside Lambda (tests, local stack).

Locally (POWERTOOLS_DEV=1, set by the local stack) Powertools indents both
logs and metrics so they read as they scroll by.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = "control-plane"
NAMESPACE = "ControlPlane"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


def bind_trace(trace_id: str | None) -> None:
    """Every log line from here on in this invocation names the trace."""
    logger.append_keys(trace_id=trace_id)


def count(name: str, value: int = 1) -> None:
    """Add `value` to the counter `name` (an EMF line on stdout)."""
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
