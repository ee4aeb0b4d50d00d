"""Shared by the bench scripts: an in-process moto stack and an AWS call counter."""
from __future__ import annotations

import collections
import contextlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ["STACK_NAME"] = "cp-bench"
os.environ.pop("AWS_ENDPOINT_URL", None)


class CallCounter:
    """Counts every AWS API call made through the app's boto3 session (botocore 'before-call' events)."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, model, **kwargs):
        self.calls.append(f"{model.service_model.service_name}.{model.name}")

    @contextlib.contextmanager
    def counting(self):
        self.calls = []
        yield self

    def summary(self) -> str:
        counts = collections.Counter(self.calls)
        return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items())


@contextlib.contextmanager
def moto_stack():
    """Deploy infra/template.yaml into in-process moto, import the app, return (app_module, counter, root)."""
    from moto import mock_aws

    with mock_aws():
        from chalicelib.aws import clients
        from chalicelib.core import config
        from infra.stack import deploy, environment

        os.environ.update(environment(deploy("cp-bench")))
        config.settings.cache_clear()
        clients.reset()
        counter = CallCounter()
        clients.session().events.register("before-call.*.*", counter)
        import app as app_module

        root = app_module.local_seed()
        yield app_module, counter, root


_warmed: dict[str, float] = {}


def warm(key: str | None) -> None:
    """Authenticate `key`, uncounted, unless that was done in the last 50 s: a key's first use in a minute
    records its lastUsedAt (one UpdateItem, chalicelib/core/auth.py), measured on a row of its own by
    bench/spine_calls.py; the rows of the other scripts are the steady state."""
    import time

    if key and time.monotonic() - _warmed.get(key, -1e9) > 50:
        from chalicelib.core import auth

        auth.authenticate(key)
        _warmed[key] = time.monotonic()


def table(rows: list[tuple], headers: tuple) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False))  # noqa: E731
    return "\n".join([line(headers), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)])
