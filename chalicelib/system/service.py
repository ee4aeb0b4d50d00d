"""Liveness of the API and its dependencies."""
from __future__ import annotations

import logging
from typing import Any, Callable

from chalicelib.core.context import Ctx
from chalicelib.system import store

log = logging.getLogger(__name__)


def _check(name: str, probe: Callable[[], None]) -> str:
    try:
        probe()
        return "ok"
    except Exception as e:  # noqa: BLE001 - any failure means the dependency is down
        log.warning("health check %s failed: %s", name, e)
        return f"unavailable: {type(e).__name__}"


def health(ctx: Ctx, command: None = None) -> dict[str, Any]:
    """{"status", "checks"} and, when a dependency is down, the contract's error beside them."""
    checks = {"dynamodb": _check("dynamodb", store.probe_dynamodb), "sqs": _check("sqs", store.probe_sqs)}
    if all(v == "ok" for v in checks.values()):
        return {"status": "ok", "checks": checks}
    return {"status": "unavailable", "checks": checks,
            "error": {"code": "UNAVAILABLE", "message": "a dependency is down"}}
