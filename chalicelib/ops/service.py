"""Ops use cases: scan, list, claim, summary. Every function is fn(ctx, command)."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from chalicelib.core import paging
from chalicelib.core.context import Ctx
from chalicelib.core.errors import Conflict, Forbidden, InvalidTransition
from chalicelib.core.lookup import found
from chalicelib.core.tx import TxFailed
from chalicelib.ops import rules, scan, store
from chalicelib.ops.github import GitHubError, OutOfTime
from chalicelib.ops.models import OpsIssue, OpsIssuePage, ScanPage, ScanRecord, ScanResult, Summary

log = logging.getLogger(__name__)

API_SCAN_SECONDS = 25.0  # API Gateway answers within 29 s: an API-started scan checkpoints before that


def require_platform_operator(ctx: Ctx) -> None:
    """Ops groups mix every tenant's failures: only the root organization's admins see them."""
    if ctx.principal is not None and not ctx.principal.root:
        raise Forbidden("ops monitoring belongs to the platform: use a key of the root organization")


def run_scan(ctx: Ctx, scope: str, seconds: float | None = None) -> ScanResult:
    require_platform_operator(ctx)
    return scan.run(ctx, scope, time.time() + (seconds if seconds is not None else API_SCAN_SECONDS))


def list_issues(ctx: Ctx, status: str | None, severity: str | None, limit: int,
                next_token: str | None) -> OpsIssuePage:
    require_platform_operator(ctx)
    scope = f"ops-issues:{status}:{severity}"
    page = store.list_groups(status, severity, limit, paging.start_key(next_token, scope))
    return OpsIssuePage(items=[store.from_item(i) for i in page.items],
                        next_token=paging.next_token(page.last_key, scope))


def list_scans(ctx: Ctx, limit: int, next_token: str | None) -> ScanPage:
    """Kept scans, newest first (each is kept REPORT_RETENTION_DAYS)."""
    require_platform_operator(ctx)
    items, last_key = store.list_scans(limit, paging.start_key(next_token, "ops-scans"))
    return ScanPage(items=items, next_token=paging.next_token(last_key, "ops-scans"))


def get_scan(ctx: Ctx, scan_id: str) -> ScanRecord:
    require_platform_operator(ctx)
    return found(store.get_scan(scan_id) if len(scan_id) <= 64 else None, "ops scan", scan_id[:64])


def summary(ctx: Ctx) -> Summary:
    require_platform_operator(ctx)
    groups = store.all_groups()
    by_status = {s: 0 for s in rules.STATUSES}
    by_severity = {s: 0 for s in rules.SEVERITIES}
    for g in groups:
        by_status[g["status"]] = by_status.get(g["status"], 0) + 1
        by_severity[g["severity"]] = by_severity.get(g["severity"], 0) + 1
    return Summary(total=len(groups), by_status=by_status, by_severity=by_severity,
                   not_filed=sum(1 for g in groups if not g.get("filed")))


def claim(ctx: Ctx, issue_id: str, claimed_by: str) -> OpsIssue:
    """open -> in_progress; assigns `claimedBy` on GitHub when it is a login GitHub accepts, and comments."""
    require_platform_operator(ctx)
    # A fingerprint is 16 hex characters: any other id is not found without a read.
    group = found(store.get_group(issue_id) if len(issue_id) == 16 else None, "ops issue", issue_id)
    now = ctx.iso()
    tx = ctx.tx()
    tx.update("group", store.claim_update(issue_id, claimed_by, now, group["severity"]))
    tx.audit("opsIssue", issue_id, "claimed", {"claimedBy": claimed_by})
    claimed = store.from_item({**group, "status": "in_progress", "claimedBy": claimed_by})
    tx.emit("ops:issue", scan.event_data(claimed, "claimed"))
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name == "group":
            raise InvalidTransition(f"ops issue {issue_id} is closed; it reopens when the failure recurs") from None
        raise
    gh = scan.github_client(ctx, lambda: 10.0)
    if gh is not None and group.get("githubNumber"):
        number = group["githubNumber"]
        # The comment first: it names the claimer (quoted: claimedBy is whatever the caller wrote) even when
        # GitHub refuses the assignment; only a name that can be a GitHub login is sent as an assignee.
        login = rules.github_login(claimed_by)
        steps: list[tuple[str, Callable[[], Any]]] = [("comment", lambda: gh.comment(number, rules.claim_comment(claimed_by)))]
        if login is not None:
            steps.append(("assign", lambda: gh.update_issue(number, assignees=[login])))
        for step, call in steps:
            try:
                call()
            except (GitHubError, OutOfTime) as error:
                log.warning("github claim step failed", extra={"fingerprint": issue_id, "step": step,
                                                                "error": str(error)})
    return claimed


def nightly(lambda_context: Any) -> dict[str, Any]:
    """The 09:00 UTC schedule: a full scan acting for the root organization, within the function's time."""
    from chalicelib.orgs import service as orgs

    root = orgs.root_org_id()
    if root is None:
        return {"skipped": "no root organization"}
    remaining = lambda_context.get_remaining_time_in_millis() / 1000 if lambda_context is not None else 840.0
    try:
        return scan.run(Ctx.system(root), "full", time.time() + remaining).model_dump(by_alias=True)
    except Conflict:
        log.info("ops scan skipped: another scan is running")
        return {"skipped": "another scan is running"}
