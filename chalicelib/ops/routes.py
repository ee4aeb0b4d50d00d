"""Ops monitoring over HTTP: thin, each route passes call.ctx and its command to the service.

Both POSTs are idempotent under an in-progress lock (`idempotency="locked"`), not staged: a scan
commits many units of work, and a claim talks to GitHub after its commit.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.ops import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp = Blueprint(__name__)
TAG = "Ops monitoring"


@endpoint(bp, "/api/ops/scan", "POST", scope=Scope.ADMIN, body="ScanRequest", response="ScanResult",
          tag=TAG, errors=(409,), idempotency="locked",
          summary="Scan failures now (root organization's admins); files GitHub issues")
def scan(call: Call) -> models.ScanResult:
    return service.run_scan(call.ctx, call.body.scope)


@endpoint(bp, "/api/ops/scans", "GET", scope=Scope.ADMIN, query="ScanQuery", response="ScanPage", tag=TAG,
          summary="Kept ops scans, newest first: scope, times, sources read, groups, issues, errors")
def list_scans(call: Call) -> models.ScanPage:
    return service.list_scans(call.ctx, call.query.limit, call.query.next_token)


@endpoint(bp, "/api/ops/scans/{scanId}", "GET", scope=Scope.ADMIN, response="ScanRecord", tag=TAG, errors=(404,),
          summary="One kept ops scan")
def get_scan(call: Call) -> models.ScanRecord:
    return service.get_scan(call.ctx, call.params["scanId"])


@endpoint(bp, "/api/ops/issues", "GET", scope=Scope.ADMIN, query="IssueQuery", response="OpsIssuePage",
          tag=TAG, summary="Ops issues (one per failure fingerprint), by status and severity")
def list_issues(call: Call) -> models.OpsIssuePage:
    q = call.query
    return service.list_issues(call.ctx, q.status, q.severity, q.limit, q.next_token)


@endpoint(bp, "/api/ops/issues/{id}/claim", "POST", scope=Scope.ADMIN, body="ClaimRequest",
          response="OpsIssue", tag=TAG, errors=(404,), idempotency="locked",
          summary="Claim an ops issue: in_progress, assigned on GitHub where possible, commented")
def claim(call: Call) -> models.OpsIssue:
    return service.claim(call.ctx, call.params["id"], call.body.claimed_by)


@endpoint(bp, "/api/ops/summary", "GET", scope=Scope.ADMIN, response="Summary", tag=TAG,
          summary="Ops issue counts by status and severity")
def summary(call: Call) -> models.Summary:
    return service.summary(call.ctx)
