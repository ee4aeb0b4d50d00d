"""Patch batches, operations, results and events: the contract's shapes (API.md "Patches").

`PatchEvent` is the stored record of one patch event; the delivery reports and
the ops scan read it (keep its fields stable).
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, model_validator

from chalicelib.core.models import ApiModel, ResponseModel
from patch_engine.paths import WORKSPACE_NAME_PATTERN

OpName = Literal["replace-block", "insert-before", "insert-after", "append", "prepend"]
EventStatus = Literal["requested", "applied", "failed", "rejected"]
BatchStatus = Literal["queued", "applied", "failed", "rejected"]
OpStatus = Literal["applied", "failed", "rejected", "validated"]
MatchedBy = Literal["marker", "lines", "line", "search"]
MAX_OPERATIONS = 1000
NAME_PATTERN = WORKSPACE_NAME_PATTERN  # a batch names its workspace by the workspaces' rule


# --- anchors -----------------------------------------------------------------

class LineSpan(ApiModel):
    start: int = Field(ge=1)
    end: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> "LineSpan":
        if self.end < self.start:
            raise ValueError("end must be >= start")
        return self


class Anchor(ApiModel):
    """Exactly one of marker (regex), lines (1-based inclusive span), line, search (exact text)."""

    marker: Optional[str] = Field(default=None, min_length=1, max_length=1000)
    lines: Optional[LineSpan] = None
    line: Optional[int] = Field(default=None, ge=1)
    search: Optional[str] = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> "Anchor":
        given = [k for k in ("marker", "lines", "line", "search") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an anchor has exactly one of marker, lines, line, search")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("marker", "lines", "line", "search") if getattr(self, k) is not None)


# --- operations --------------------------------------------------------------

class _Op(ApiModel):
    # The path rule (paths.py) and the marker bounds (markers.py) are checked for the whole batch
    # by rules.operation_problems when it is submitted, naming `operations[i].file`.
    file: str = Field(min_length=1, max_length=1024)
    content: str = ""
    expected_sha256: Optional[str] = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")


class ReplaceBlock(_Op):
    op: Literal["replace-block"]
    anchor: Anchor


class InsertBefore(_Op):
    op: Literal["insert-before"]
    anchor: Anchor


class InsertAfter(_Op):
    op: Literal["insert-after"]
    anchor: Anchor


class Append(_Op):
    op: Literal["append"]


class Prepend(_Op):
    op: Literal["prepend"]


PatchOperation = Annotated[Union[ReplaceBlock, InsertBefore, InsertAfter, Append, Prepend],
                           Field(discriminator="op")]


class PatchBatch(ApiModel):
    batch_id: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    workspace: str = Field(pattern=NAME_PATTERN)
    task_id: Optional[str] = Field(default=None, min_length=1, max_length=128)
    order_id: Optional[str] = Field(default=None, min_length=1, max_length=128)
    factory: Optional[str] = Field(default=None, min_length=1, max_length=128)
    phase: Optional[str] = Field(default=None, min_length=1, max_length=128)
    operations: list[PatchOperation] = Field(min_length=1, max_length=MAX_OPERATIONS)
    dry_run: bool = False


# --- results and answers -----------------------------------------------------

class OpResult(ResponseModel):
    index: int
    file: str
    op: OpName
    status: OpStatus
    matched_by: Optional[MatchedBy] = None
    error: Optional[str] = None


class ApplyAccepted(ResponseModel):
    batch_id: str
    status: Literal["queued"]


class DryRunAnswer(ResponseModel):
    batch_id: str
    status: Literal["validated", "failed"]
    dry_run: Literal[True] = True
    results: list[OpResult]


class ApplyAnswer(ResponseModel):
    """POST /api/patches/apply: 202 {batchId, status: queued}, or 200 for a dry run
    {batchId, status: validated|failed, dryRun: true, results} (one documented shape)."""

    batch_id: str
    status: Literal["queued", "validated", "failed"]
    dry_run: Optional[bool] = None
    results: Optional[list[OpResult]] = None


class BatchView(ResponseModel):
    """A patch batch (the entity; named as its OpenAPI component always was): GET
    /api/patches/batches/{batchId} answers it as it is. What the worker keeps
    on it between its steps (the operation count, when it was requested in ms, the results
    prepared before the workspace commit) is stored but never shown."""

    batch_id: str
    workspace: str
    status: BatchStatus
    task_id: Optional[str] = None
    order_id: Optional[str] = None
    factory: Optional[str] = None
    phase: Optional[str] = None
    requested_at: str
    finished_at: Optional[str] = None
    duration_ms: Optional[int] = None
    results: list[OpResult] = []
    operations: int = Field(default=0, exclude=True)
    requested_ms: int = Field(default=0, exclude=True)
    pending_results: Optional[list[OpResult]] = Field(default=None, exclude=True)
    pending_outcome: Optional[BatchStatus] = Field(default=None, exclude=True)
    pending_ms: Optional[int] = Field(default=None, exclude=True)


class PatchEvent(ResponseModel):
    """One stored patch event (API.md: {eventId, batchId, taskId, orderId, factory, phase, file,
    op, status, error?, at, durationMs}).

    `requested` is one event per batch (file and op are null on it); applied, failed and
    rejected are one per operation. durationMs is the batch's (0 on `requested`)."""

    event_id: str
    batch_id: str
    task_id: Optional[str] = None
    order_id: Optional[str] = None
    factory: Optional[str] = None
    phase: Optional[str] = None
    file: Optional[str] = None
    op: Optional[OpName] = None
    status: EventStatus
    error: Optional[str] = None
    at: str
    duration_ms: int = 0


# --- work applied outside the control plane (POST /api/patches/events) --------

class ReportedResult(ApiModel):
    """One operation's outcome as the agent CLI reports it (`agent patch apply` on local files).
    Dry runs are not reported: `validated` is no outcome."""

    index: int = Field(ge=0, lt=MAX_OPERATIONS)
    file: str = Field(min_length=1, max_length=1024)
    op: OpName
    status: Literal["applied", "failed", "rejected"]
    matched_by: Optional[MatchedBy] = None
    error: Optional[str] = Field(default=None, max_length=2000)


class PatchEventsReport(ApiModel):
    """POST /api/patches/events: a batch applied outside the control plane, recorded like one the
    worker applied (a batch item, its `requested` event, one event per result, the day and order
    aggregates), so logs, stats, trends and delivery reports count it. `workspace` names where it
    was applied (default `local`); `durationMs` how long it took there."""

    batch_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    workspace: str = Field(default="local", pattern=NAME_PATTERN)
    task_id: Optional[str] = Field(default=None, min_length=1, max_length=128)
    order_id: Optional[str] = Field(default=None, min_length=1, max_length=128)
    factory: Optional[str] = Field(default=None, min_length=1, max_length=128)
    phase: Optional[str] = Field(default=None, min_length=1, max_length=128)
    duration_ms: int = Field(default=0, ge=0, le=86_400_000)
    results: list[ReportedResult] = Field(min_length=1, max_length=MAX_OPERATIONS)


class EventsRecorded(ResponseModel):
    """POST /api/patches/events answers 201: the batch as recorded and how many events were stored."""

    batch_id: str
    status: BatchStatus
    events: int


# --- logs, stats, trends ----------------------------------------------------

class LogsQuery(ApiModel):
    task_id: Optional[str] = Field(default=None, min_length=1, max_length=128)
    file: Optional[str] = Field(default=None, min_length=1, max_length=1024)
    search: Optional[str] = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=100_000)
    order: Literal["asc", "desc"] = "desc"


class LogsPage(ResponseModel):
    items: list[PatchEvent]
    limit: int
    offset: int
    has_more: bool


class RangeQuery(ApiModel):
    from_: Optional[str] = Field(default=None, alias="from")
    to: Optional[str] = None


class TrendsQuery(RangeQuery):
    group_by: Literal["weekly", "phase", "order"] = "weekly"


class DailyStat(ResponseModel):
    date: str
    total: int
    applied: int
    failed: int


class FactoryStat(ResponseModel):
    factory: str
    total: int
    applied: int
    rate: float


class ErrorStat(ResponseModel):
    message: str
    count: int


class Stats(ResponseModel):
    daily: list[DailyStat]
    success_rate_by_factory: list[FactoryStat]
    operations: dict[str, int]
    errors: list[ErrorStat]


class Trend(ResponseModel):
    key: str
    total: int
    applied: int
    failed: int
    success_rate: float
    first_at: Optional[str] = None
    last_at: Optional[str] = None
