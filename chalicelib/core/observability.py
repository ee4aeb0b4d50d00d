"""Powertools Logger, Metrics and Tracer: one of each for the whole control plane.

- `logger`: structured JSON logs; every handler appends the request's traceId
  (`bind_trace`), so one trace can be followed across HTTP, WebSocket, stream
  and queue handlers. Every `chalicelib.*` module logger writes through the
  same handler (one set-up for every line, the 500 path included).
- `count(name)`: one EMF metric (CloudWatch reads it from the log line; no
  API call, no flush to forget). The counters an operator watches:
  JobsClaimed, LeasesExpired, RunsTimedOut, FanoutSent, FanoutGone, Denials.
- `traced`: an X-Ray subsegment around a handler on Lambda (the functions run
  with active tracing, `.chalice/config.json` "xray"); off outside Lambda and
  with POWERTOOLS_TRACE_DISABLED=true.

Each is built on first use, not at import: every function of the app imports
app.py, and the X-Ray SDK alone costs more to import than Chalice and boto3
together (bench/cold_import.py). A function that never logs, counts or traces
never pays for them.

Locally (POWERTOOLS_DEV=1, set by the local stack) Powertools indents both
logs and metrics so they read as they scroll by.
"""
from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from chalicelib.core.config import on_lambda

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Tracer

SERVICE = "control-plane"
NAMESPACE = "ControlPlane"
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class _Once(Generic[T]):
    """`build()` run exactly once per process, however many threads ask first.

    Not functools.cache: that lets concurrent first callers each build, and
    keeps the last. A second Powertools Logger for the same service takes the
    logging logger's first handler as its own; when that was Chalice's plain
    handler on the same "control-plane" logger (app_name; app.py now turns
    Chalice's handler off), every `append_keys` of that Logger raised
    AttributeError: every request of the process answered 500 from then on.
    The local stack's Lambda pool runs the first requests after a (re)start
    in parallel (an edge gateway's upload, its command poll and its WebSocket
    $connect arrive together).
    """

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built = False
        self._value: T | None = None
        functools.update_wrapper(self, build)

    def __call__(self) -> T:
        if not self._built:
            with self._lock:
                if not self._built:
                    self._value = self._build()
                    self._built = True
        return self._value  # type: ignore[return-value]  # set once _built

    def cache_clear(self) -> None:
        """Build again on the next call (tests)."""
        with self._lock:
            self._built, self._value = False, None


@_Once
def _logger() -> "Logger":
    import logging

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
    from aws_lambda_powertools.logging.types import LogRecord

    from chalicelib.core.redaction import redact

    class RedactingFormatter(LambdaPowertoolsFormatter):
        """Every line leaves through here, tracebacks included: a secret a tenant wrote into
        something the app logs (an error message, a header, a payload) is redacted in the line
        itself, with the shapes the ops scan redacts (core/redaction.py; docs/SECURITY.md)."""

        def serialize(self, log: LogRecord) -> str:
            return redact(super().serialize(log))

    logger = Logger(service=SERVICE, logger_formatter=RedactingFormatter())
    # One logger set-up for every line: the modules' own `logging.getLogger(__name__)` loggers
    # (chalicelib.*: the pipeline's 500, a lost audit write, the fan-out) write through the same
    # JSON handler, so they carry the request and trace ids appended here; not to the root
    # logger as well (Lambda's plain handler would print each a second time, unstructured).
    modules = logging.getLogger("chalicelib")
    modules.handlers = [logger.registered_handler]
    modules.setLevel(logger.log_level)
    modules.propagate = False
    return logger


def __getattr__(name: str) -> Any:
    # `from chalicelib.core.observability import logger` builds the Logger at that moment.
    if name == "logger":
        return _logger()
    raise AttributeError(name)


@_Once
def _tracer() -> "Tracer | None":
    if not on_lambda() or os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true"):
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


def traced(fn: F) -> F:
    """`fn` inside an X-Ray subsegment where tracing is on; the tracer is made on the first call."""
    wrapped: Callable[..., Any] | None = None

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal wrapped
        if wrapped is None:
            tracer = _tracer()
            wrapped = fn if tracer is None else tracer.capture_method(capture_response=False)(fn)
        return wrapped(*args, **kwargs)

    return call  # type: ignore[return-value]  # functools.wraps keeps fn's signature; mypy cannot see it


def bind_trace(trace_id: str | None, lambda_context: Any = None) -> None:
    """Every log line from here on in this invocation names the trace (and, on Lambda, the
    invocation's request id under Powertools' own key, `function_request_id`)."""
    request_id = getattr(lambda_context, "aws_request_id", None)
    if request_id is not None:
        _logger().append_keys(trace_id=trace_id, function_request_id=request_id)
    else:
        _logger().append_keys(trace_id=trace_id)


def count(name: str, value: int = 1) -> None:
    """Add `value` to the counter `name` (an EMF line on stdout)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
