from __future__ import annotations

from typing import Any, ClassVar, Literal, Optional

from pydantic import Field

from chalicelib.core.models import ApiModel, PageModel, ResponseModel, ShowsNulls

Status = Literal["open", "in_progress", "closed"]
Severity = Literal["critical", "high", "medium", "low"]


class ScanRequest(ApiModel):
    scope: Literal["full", "incremental"] = "incremental"


class ScanResult(ResponseModel):
    scan_id: str
    scope: str
    ingested: int
    issues_opened: int
    issues_updated: int
    groups_touched: int = 0
    not_filed: int = 0
    github_calls: int = 0
    items_read: int = 0
    checkpointed: bool = False


class IssueQuery(ApiModel):
    status: Optional[Status] = None
    severity: Optional[Severity] = None
    limit: int = Field(default=50, ge=1, le=200)
    next_token: Optional[str] = Field(default=None, max_length=2048)


class OpsIssue(ShowsNulls):
    """An ops issue: one group of failures with one fingerprint (ops/store.py maps its item; the scan's
    bookkeeping, such as the count GitHub last heard, stays in the item)."""

    shown_null: ClassVar[tuple[str, ...]] = ("githubNumber", "githubUrl", "claimedBy")

    id: str
    fingerprint: str
    title: str
    kind: str
    severity: str
    status: str
    count: int
    first_seen: str
    last_seen: str
    samples: list[dict[str, Any]]
    normalized: str
    filed: bool
    github_number: Optional[int] = None
    github_url: Optional[str] = None
    claimed_by: Optional[str] = None


class OpsIssuePage(PageModel):
    items: list[OpsIssue]


class ClaimRequest(ApiModel):
    claimed_by: str = Field(min_length=1, max_length=128)


class Summary(ResponseModel):
    total: int
    by_status: dict[str, int]
    by_severity: dict[str, int]
    not_filed: int


# --- scan history (GET /api/ops/scans) ------------------------------------------------------

class ScanSource(ResponseModel):
    """What one kind of source gave a scan: items read and why some could not be read (each message names
    the source: a repository for `ci`; at most 20 kept)."""

    name: str
    read: int
    errors: list[str] = []


class ScanRecord(ShowsNulls):
    """One ops scan as kept (every scan is; its lifetime is REPORT_RETENTION_DAYS). `finishedAt` is null
    while it runs, and stays null for a scan whose function died; `error` says why a scan ended early."""

    shown_null: ClassVar[tuple[str, ...]] = ("finishedAt",)

    scan_id: str
    scope: str
    started_at: str
    finished_at: Optional[str] = None
    sources: list[ScanSource] = []
    groups: int = 0
    issues_opened: int = 0
    issues_updated: int = 0
    ingested: int = 0
    not_filed: int = 0
    github_calls: int = 0
    checkpointed: bool = False
    error: Optional[str] = None


class ScanQuery(ApiModel):
    limit: int = Field(default=20, ge=1, le=100)
    next_token: Optional[str] = Field(default=None, max_length=2048)


class ScanPage(PageModel):
    items: list[ScanRecord]
