from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.context import Ctx
from chalicelib.core.lazy import lazy

if TYPE_CHECKING:
    from chalicelib.ops import service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    service = lazy("chalicelib.ops.service")

bp = Blueprint(__name__)
TAG = "Ops monitoring"


def _ctx(call: Call) -> Ctx:
    return Ctx(principal=call.principal, trace_id=call.trace_id)


@endpoint(bp, "/api/ops/scan", "POST", scope=Scope.ADMIN, body="ScanRequest", response="ScanResult",
          tag=TAG, errors=(409,), summary="Scan failures now (root organization's admins); files GitHub issues")
def scan(call: Call) -> dict[str, Any]:
    return service.run_scan(_ctx(call), call.body.scope)


@endpoint(bp, "/api/ops/issues", "GET", scope=Scope.ADMIN, query="IssueQuery", response="OpsIssuePage",
          tag=TAG, summary="Ops issues (one per failure fingerprint), by status and severity")
def list_issues(call: Call) -> dict[str, Any]:
    q = call.query
    return service.list_issues(_ctx(call), q.status, q.severity, q.limit, q.next_token)


@endpoint(bp, "/api/ops/issues/{id}/claim", "POST", scope=Scope.ADMIN, body="ClaimRequest",
          response="OpsIssue", tag=TAG, errors=(404,),
          summary="Claim an ops issue: in_progress, assigned on GitHub where possible, commented")
def claim(call: Call) -> dict[str, Any]:
    return service.claim(_ctx(call), call.params["id"], call.body.claimed_by)


@endpoint(bp, "/api/ops/summary", "GET", scope=Scope.ADMIN, response="Summary", tag=TAG,
          summary="Ops issue counts by status and severity")
def summary(call: Call) -> dict[str, Any]:
    return service.summary(_ctx(call))
