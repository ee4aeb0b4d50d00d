"""Patches: the use cases (submit, dry run, the worker's apply, batch view, logs, stats, trends)
and the read functions other domains use (delivery reports, the ops scan).

Every function is `fn(ctx, ...)`. Read functions for other domains (stable signatures):

    order_events(ctx, order_id) -> list[PatchEvent]            one order's events, oldest first
    orders_changed_since(ctx, since_iso) -> [(orderId, lastAt)] orders whose latest event is after since
    failed_events(ctx, after_event_id, limit) -> [PatchEvent]   failed + rejected, in eventId order
"""
from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any, cast

from chalicelib.core import clock, ids
from chalicelib.core.errors import Conflict, Unavailable, ValidationError
from chalicelib.core.lookup import found
from chalicelib.core.tx import TxFailed, retry_conflicts
from chalicelib.core import outbox as core_outbox
from chalicelib.patches import queue, store
from chalicelib.patches.models import (
    ApplyAccepted, BatchView, BatchStatus, DailyStat, DryRunAnswer, ErrorStat, EventStatus, FactoryStat, LogsPage, LogsQuery,
    MatchedBy, OpName, OpResult, OpStatus, PatchBatch, PatchEvent, PatchEventsReport, EventsRecorded, Stats, Trend,
)
from chalicelib.workspaces import service as workspaces
from patch_engine import bridge, engine

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx


# --- reads for other domains ------------------------------------------------------

def order_events(ctx: "Ctx", order_id: str) -> list[PatchEvent]:
    """Every event of one order, oldest first: one Query (paged) on GSI2."""
    return store.order_events(ctx.org_id, order_id)


def orders_changed_since(ctx: "Ctx", since_iso: str | None) -> list[tuple[str, str]]:
    """(orderId, lastAt) of the orders whose latest event is strictly after `since_iso` (all when None),
    oldest change first; from the per-order aggregates (GSI1 by lastAt), never the events."""
    return [(i["orderId"], i["lastAt"]) for i in store.orders_since(ctx.org_id, since_iso)]


def failed_events(ctx: "Ctx", after_event_id: str | None, limit: int) -> list[PatchEvent]:
    """Failed and rejected events of the org in eventId (time) order, after the watermark."""
    return store.failed_events(ctx.org_id, after_event_id, max(1, min(int(limit), 1000)))


# --- submitting ----------------------------------------------------------------------

INLINE_LIMIT = 64 * 1024  # larger batches travel by reference (claim check in S3)
FAULTS: set[str] = set()  # batch ids whose worker already died once (fault injection, tests only)


def _ops_json(batch: PatchBatch) -> list[dict[str, Any]]:
    return [op.model_dump(by_alias=True, exclude_none=True) for op in batch.operations]


def submit(ctx: "Ctx", batch: PatchBatch) -> ApplyAccepted | DryRunAnswer:
    """dryRun: the results against the workspace as it is, nothing written. Otherwise: the batch
    item, its `patch:requested` event (stored and on the outbox) in one transaction, then the
    queue message (MessageGroupId: the workspace, so batches of one workspace apply in order)."""
    batch_id = batch.batch_id or ids.new_id()
    operations = _ops_json(batch)
    problems = bridge.operation_problems(operations)
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:3])
        raise ValidationError(f"invalid request: {summary}", problems)
    if batch.dry_run:
        snap = workspaces.snapshot(ctx, batch.workspace)
        outcome = engine.apply_batch(operations, snap.read)
        results = _results(outcome, dry_run=True)
        return DryRunAnswer(batch_id=batch_id, status="validated" if outcome.ok else "failed", results=results)

    now_ms = int(ctx.now() * 1000)
    at = ctx.iso(now_ms / 1000)
    message: dict[str, Any] = {"v": 1, "kind": "apply", "orgId": ctx.org_id, "batchId": batch_id,
                               "workspace": batch.workspace, "traceId": ctx.trace_id}
    body = json.dumps({"operations": operations}, separators=(",", ":"))
    if len(body.encode()) > INLINE_LIMIT:
        message["ref"] = queue.put_claim_check(ctx.org_id, batch_id, body.encode())
    else:
        message["operations"] = operations

    requested = PatchEvent(event_id=ids.new_id(now_ms), batch_id=batch_id, task_id=batch.task_id,
                           order_id=batch.order_id, factory=batch.factory, phase=batch.phase,
                           status="requested", at=at, duration_ms=0)
    tx = ctx.tx()
    tx.put("batch", store.put_batch(ctx.org_id, BatchView(
        batch_id=batch_id, workspace=batch.workspace, status="queued", task_id=batch.task_id,
        order_id=batch.order_id, factory=batch.factory, phase=batch.phase, requested_at=at,
        operations=len(operations), requested_ms=now_ms)))
    tx.put("event", store.put_event(ctx.org_id, requested))
    tx.emit("patch:requested", {**_event_data(requested), "workspace": batch.workspace,
                                "operations": len(operations)})
    try:
        retry_conflicts(tx.commit)
    except TxFailed as failed:
        if failed.name == "batch":
            raise Conflict(f"batch {batch_id} already exists") from None
        raise
    try:
        queue.send_batch(ctx.settings.patches_queue_url, message, group_id=_group(ctx.org_id, batch.workspace),
                         dedup_id=hashlib.sha256(f"{ctx.org_id}#{batch_id}".encode()).hexdigest())
    except Exception:
        log.exception("could not queue batch %s", batch_id)
        _finish(ctx, _stored_batch(ctx, batch_id), "rejected",
                [OpResult(index=i, file=o["file"], op=o["op"], status="rejected",
                          error="QUEUE_UNAVAILABLE: the batch could not be queued")
                 for i, o in enumerate(operations)], now_ms, int(ctx.now() * 1000))
        raise Unavailable("the patch queue is unavailable; retry", headers={"Retry-After": "1"}) from None
    return ApplyAccepted(batch_id=batch_id, status="queued")


def _stored_batch(ctx: "Ctx", batch_id: str) -> BatchView:
    """A batch this code path itself wrote (or found) earlier."""
    batch = store.get_batch(ctx.org_id, batch_id)
    if batch is None:
        raise RuntimeError(f"batch {batch_id} vanished")
    return batch


def _group(org_id: str, workspace: str) -> str:
    return f"{org_id}.{workspace}"


def _event_data(event: PatchEvent) -> dict[str, Any]:
    return event.model_dump(by_alias=True, exclude_none=True)


def _results(outcome: engine.Outcome, dry_run: bool = False) -> list[OpResult]:
    """Per-op results: an op that failed says why; when the batch does not apply, the ops that
    would have applied are `rejected` (their batch failed) and name the first failure."""
    first = next((r for r in outcome.results if not r.ok), None)
    out = []
    status: OpStatus
    for r in outcome.results:
        if r.ok:
            status = "validated" if dry_run else ("applied" if first is None else "rejected")
            error = None if first is None or dry_run else f"BATCH_NOT_APPLIED: operation {first.index} failed"
        else:
            status, error = "failed", r.error
        # The engine types op and matchedBy as plain str (it yields only these names); OpResult validates them.
        out.append(OpResult(index=r.index, file=r.file, op=cast(OpName, r.op), status=status,
                            matched_by=cast(MatchedBy | None, r.matched_by), error=error))
    return out


# --- the worker ----------------------------------------------------------------------

class InjectedFault(RuntimeError):
    """The worker 'dies' here (tests of redelivery; only with PATCHES_FAULT_INJECTION=1)."""


def _fault_hook(batch: BatchView) -> Any:
    if os.environ.get("PATCHES_FAULT_INJECTION") != "1" or batch.factory != FAULT_FACTORY:
        return None
    batch_id = batch.batch_id

    def after_blob(count: int) -> None:
        if count == 1 and batch_id not in FAULTS:
            FAULTS.add(batch_id)
            raise InjectedFault(f"injected fault after the first file of batch {batch_id}")

    return after_blob


FAULT_FACTORY = "fault-injection:die-after-first-file"
COMMIT_ATTEMPTS = 5


def load_operations(message: dict[str, Any]) -> list[dict[str, Any]] | None:
    if "operations" in message:
        return cast(list[dict[str, Any]], message["operations"])
    raw = queue.get_claim_check(message["ref"])
    return cast(list[dict[str, Any]], json.loads(raw)["operations"]) if raw is not None else None


def apply_queued(ctx: "Ctx", message: dict[str, Any]) -> str:
    """Apply one queued batch, once. Returns what happened (for logs and tests).

    Steps, each safe to repeat after a crash: (1) the batch item says queued, else only the
    events may be missing; (2) a snapshot of the workspace; a manifest that already names
    this batch means the commit happened: finish with the results prepared before it;
    (3) the engine; (4) the results written on the batch item (still queued); (5) blobs, then
    the conditional manifest write: the commit point; (6) queued -> applied|failed|rejected
    with the day and order aggregates, one transaction whose condition makes it happen once;
    (7) the per-operation events (deterministic ids: a repeat rewrites the same items, and a
    delivery that finds the batch finished writes them again in case the first died midway)."""
    batch_id = message["batchId"]
    item = store.get_batch(ctx.org_id, batch_id)
    if item is None:
        log.error("no batch %s for a queued message: dropped", batch_id)
        return "dropped"
    if item.status != store.QUEUED:
        # finished by an earlier delivery, which may have died before its events were all
        # written: write them again (same ids, so nothing is stored or delivered twice)
        _write_events(ctx, item)
        return "duplicate"
    started_ms = int(ctx.now() * 1000)
    operations = load_operations(message)
    if operations is None:
        return _finish_and_record(ctx, item, "rejected", [], started_ms)
    for attempt in range(COMMIT_ATTEMPTS):
        snap = workspaces.snapshot(ctx, item.workspace)
        if snap.committed_batch(batch_id) is not None:  # committed before a crash
            item = _stored_batch(ctx, batch_id)
            return _finish_and_record(ctx, item, item.pending_outcome or "applied",
                                      item.pending_results or [], started_ms)
        try:
            outcome = engine.apply_batch(operations, snap.read)
        except Exception as e:  # noqa: BLE001 - the engine is pure: a redelivery would only raise it again
            log.exception("the patch engine failed on batch %s", batch_id)
            return _finish_and_record(ctx, item, "failed",
                                      failure_results(operations, f"the patch engine failed ({_describe(e)})"),
                                      started_ms)
        results = _results(outcome)
        if not outcome.ok:
            return _finish_and_record(ctx, item, "rejected" if outcome.drift else "failed", results, started_ms)
        now_ms = int(ctx.now() * 1000)
        prepared = ctx.tx()
        prepared.update("batch", store.prepare_batch(ctx.org_id, batch_id, results, "applied", now_ms))
        prepared.commit()
        try:
            workspaces.commit(ctx, snap, outcome.files, {"batchId": batch_id, "atMs": now_ms},
                              after_blob=_fault_hook(item))
        except workspaces.PreconditionFailed:
            log.info("workspace %s changed under batch %s (attempt %d): re-reading", item.workspace,
                     batch_id, attempt + 1)
            continue
        return _finish_and_record(ctx, item, "applied", results, started_ms)
    raise RuntimeError(f"workspace {item.workspace} kept changing under batch {batch_id}; SQS will retry")


WORKER_ERROR = "WORKER_ERROR"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:300]}"


def failure_results(operations: list[dict[str, Any]] | None, reason: str) -> list[OpResult]:
    """Every operation `failed` with the same reason: the batch failed as a whole, not one op."""
    out = []
    for index, op in enumerate(operations or []):
        name = op.get("op") if isinstance(op, dict) else None
        out.append(OpResult(index=index, file=str(op.get("file") if isinstance(op, dict) else "")[:1024],
                            op=cast(OpName, name if name in engine.OPS else "append"), status="failed",
                            error=f"{WORKER_ERROR}: {reason}"))
    return out


def fail_queued(ctx: "Ctx", message: dict[str, Any], error: BaseException) -> str:
    """The last delivery of a batch failed too (apply_queued raised): finish it `failed`, saying
    why, so that the message is acknowledged and its workspace's next batch runs, instead of the
    batch sitting `queued` until the dead-letter queue. A batch whose commit did happen (the
    manifest names it) is finished as applied instead. Raises when even that cannot be written
    (DynamoDB down): the message then goes to the dead-letter queue."""
    batch_id = message["batchId"]
    item = store.get_batch(ctx.org_id, batch_id)
    if item is None:
        return "dropped"
    if item.status != store.QUEUED:
        return "duplicate"
    started_ms = int(ctx.now() * 1000)
    try:
        committed = workspaces.snapshot(ctx, item.workspace).committed_batch(batch_id)
    except Exception:  # noqa: BLE001 - the store may be what is down: not committed as far as we can tell
        committed = None
    if committed is not None:
        item = _stored_batch(ctx, batch_id)
        return _finish_and_record(ctx, item, item.pending_outcome or "applied",
                                  item.pending_results or [], started_ms)
    try:
        operations = load_operations(message)
    except Exception:  # noqa: BLE001 - the claim check may be unreadable too
        operations = None
    reason = f"the batch could not be applied after {message.get('_deliveries', 'several')} deliveries ({_describe(error)})"
    return _finish_and_record(ctx, item, "failed", failure_results(operations, reason), started_ms)


def _finish_and_record(ctx: "Ctx", item: BatchView, outcome: BatchStatus, results: list[OpResult], started_ms: int) -> str:
    finished_ms = int(ctx.now() * 1000)
    try:
        final = _finish(ctx, item, outcome, results, started_ms, finished_ms)
    except TxFailed as failed:
        if failed.name != "batch":
            raise
        log.info("batch %s was finished by another delivery", item.batch_id)
        final = _stored_batch(ctx, item.batch_id)
    _write_events(ctx, final)
    return final.status


def _finish(ctx: "Ctx", item: BatchView, outcome: BatchStatus, results: list[OpResult], started_ms: int,
            finished_ms: int) -> BatchView:
    """queued -> outcome with the aggregates, once; returns the batch as it now is."""
    org_id = ctx.org_id
    at = ctx.iso(finished_ms / 1000)
    final = item.model_copy(update={"status": outcome, "results": results, "finished_at": at,
                                    "duration_ms": max(0, finished_ms - started_ms),
                                    "pending_results": None, "pending_outcome": None})
    tx = ctx.tx()
    tx.update("batch", store.finish_batch(org_id, final))
    _add_aggregates(tx, org_id, item, results, at)
    retry_conflicts(tx.commit)  # the day and order aggregates are hot items
    return final


def _add_aggregates(tx: Any, org_id: str, item: BatchView, results: list[OpResult], at: str) -> None:
    """The day and order aggregates a finished batch adds, into the unit of work that finishes it."""
    if not results:
        return
    day, counters = aggregate_counters(item, results, at)
    tx.update("day", store.day_update(org_id, day, counters, at))
    if item.order_id:
        applied = sum(r.status == "applied" for r in results)
        tx.update("order", store.order_update(org_id, item.order_id,
                                              {"total": len(results), "applied": applied,
                                               "failed": len(results) - applied}, at))


def aggregate_counters(item: BatchView, results: list[OpResult], at: str) -> tuple[str, dict[str, int]]:
    """The day's counters this batch adds (per operation outcome), as flat attribute names."""
    counters: dict[str, int] = {}

    def add(name: str, n: int = 1) -> None:
        counters[name] = counters.get(name, 0) + n

    factory, phase = item.factory or "unknown", item.phase or "unknown"
    for r in results:
        ok = r.status == "applied"
        add("total")
        add("applied" if ok else "failed")
        add(f"f#{factory}#t")
        add(f"ph#{phase}#t")
        add(f"op#{r.op}")
        if ok:
            add(f"f#{factory}#a")
            add(f"ph#{phase}#a")
        if r.status == "failed" and r.error:
            add(f"e#{normalize_error(r.error)}")
    return at[:10], counters


def normalize_error(message: str) -> str:
    """An error message as the stats group it: numbers and quoted values folded, bounded."""
    import re

    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    text = re.sub(r"\b[0-9a-f]{64}\b", "<sha256>", text)
    text = re.sub(r"\d+", "N", text)
    return text[:160]


def _event_ids(org_id: str, item: BatchView, count: int) -> list[str]:
    finished_ms = int(clock.parse_iso(item.finished_at or "") * 1000)
    seed = hashlib.sha256(f"{org_id}#{item.batch_id}".encode()).digest()
    return ids.new_ids([finished_ms] * count, seed=seed)


def _event_status(status: OpStatus) -> EventStatus:
    """A stored result's status as its event's: dry runs ("validated") are never stored."""
    if status == "validated":
        raise ValueError("a validated (dry run) result has no event")
    return status


def _write_events(ctx: "Ctx", item: BatchView) -> None:
    """One stored event and one outbox event per operation result; same ids on every repeat."""
    results = item.results
    if results and item.finished_at:
        events = [PatchEvent(event_id=eid, batch_id=item.batch_id, task_id=item.task_id,
                             order_id=item.order_id, factory=item.factory, phase=item.phase,
                             file=r.file, op=r.op, status=_event_status(r.status), error=r.error,
                             at=item.finished_at, duration_ms=int(item.duration_ms or 0))
                  for eid, r in zip(_event_ids(ctx.org_id, item, len(results)), results, strict=True)]
        # One bulk unit of work (BatchWriteItem): the stored events and their outbox items. Unconditional
        # and with deterministic ids, so a repeat rewrites the same items (MODIFY, not delivered twice).
        bulk = ctx.bulk()
        for event, r in zip(events, results, strict=True):
            bulk.put(f"patch-event:{event.event_id}", store.put_event(ctx.org_id, event))
            data = {**_event_data(event), "workspace": item.workspace, "index": r.index}
            if r.matched_by:
                data["matchedBy"] = r.matched_by
            entry = core_outbox.event_item(ctx.org_id, f"patch:{event.status}", data)
            entry["id"] = event.event_id
            bulk.put(f"event:{event.event_id}", core_outbox.item_put(entry))
        bulk.commit()


# --- work applied outside the control plane ----------------------------------------

def reported_outcome(results: list[OpResult]) -> BatchStatus:
    """A reported batch's status: applied when every operation applied; rejected when none failed
    but some were rejected (drift); failed otherwise (a batch is atomic)."""
    statuses = {r.status for r in results}
    if statuses == {"applied"}:
        return "applied"
    return "failed" if "failed" in statuses else "rejected"


def record_external(ctx: "Ctx", report: PatchEventsReport) -> EventsRecorded:
    """A batch applied outside the control plane (the agent CLI on local files), recorded like one
    the worker applied: the batch item (finished), its `requested` event and the day and order
    aggregates in one transaction, then one stored and outbox event per result (the worker's
    bulk write, same deterministic ids). A batchId already recorded or submitted in the org: 409."""
    problems = []
    for i, r in enumerate(report.results):
        try:
            engine.normalize_path(r.file)
        except engine.PathError as e:
            problems.append({"field": f"results[{i}].file", "message": str(e)})
    if problems:
        raise ValidationError(f"invalid request: {problems[0]['field']}: {problems[0]['message']}", problems)
    results = [OpResult(index=r.index, file=engine.normalize_path(r.file), op=r.op, status=r.status,
                        matched_by=r.matched_by, error=r.error) for r in report.results]
    finished_ms = int(ctx.now() * 1000)
    requested_ms = max(0, finished_ms - report.duration_ms)
    final = BatchView(batch_id=report.batch_id, workspace=report.workspace, status=reported_outcome(results),
                      task_id=report.task_id, order_id=report.order_id, factory=report.factory,
                      phase=report.phase, requested_at=ctx.iso(requested_ms / 1000),
                      finished_at=ctx.iso(finished_ms / 1000), duration_ms=report.duration_ms,
                      results=results, operations=len(results), requested_ms=requested_ms)
    requested = PatchEvent(event_id=ids.new_id(requested_ms), batch_id=final.batch_id, task_id=final.task_id,
                           order_id=final.order_id, factory=final.factory, phase=final.phase,
                           status="requested", at=final.requested_at, duration_ms=0)
    tx = ctx.tx()
    tx.put("batch", store.put_batch(ctx.org_id, final))
    tx.put("event", store.put_event(ctx.org_id, requested))
    tx.emit("patch:requested", {**_event_data(requested), "workspace": final.workspace,
                                "operations": len(results)})
    _add_aggregates(tx, ctx.org_id, final, results, final.finished_at or final.requested_at)
    tx.audit("patchBatch", final.batch_id, "reported", {"status": final.status, "operations": len(results),
                                                        "workspace": final.workspace})
    try:
        retry_conflicts(tx.commit)
    except TxFailed as failed:
        if failed.name == "batch":
            raise Conflict(f"batch {final.batch_id} already exists") from None
        raise
    _write_events(ctx, final)
    return EventsRecorded(batch_id=final.batch_id, status=final.status, events=len(results) + 1)


# --- reads ---------------------------------------------------------------------------

def get_batch(ctx: "Ctx", batch_id: str) -> BatchView:
    return found(store.get_batch(ctx.org_id, batch_id) if len(batch_id) <= 64 else None, "batch", batch_id[:64])


def logs(ctx: "Ctx", q: LogsQuery) -> LogsPage:
    """Events matching the filters, newest first by default; `offset` skips matches (the cost
    grows with offset + limit: one Query on the narrowest key, paged)."""
    wanted = q.offset + q.limit + 1
    found: list[dict[str, Any]] = []
    start = None
    while len(found) < wanted:
        page = store.events_page(ctx.org_id, task_id=q.task_id, file=q.file, forward=q.order == "asc",
                                 limit=min(1000, wanted - len(found) + (50 if q.search or q.task_id and q.file else 0)),
                                 start_key=start, search=q.search)
        found.extend(page.items)
        if not page.last_key:
            break
        start = page.last_key
    window = found[q.offset:q.offset + q.limit]
    return LogsPage(items=[store.to_event(i) for i in window], limit=q.limit, offset=q.offset,
                    has_more=len(found) > q.offset + q.limit)


def _day_range(from_: str | None, to: str | None, default_days: int = 30) -> tuple[str, str]:
    def day(text: str, field: str) -> str:
        try:
            return clock.iso(clock.parse_iso(text))[:10]
        except (ValueError, TypeError):
            raise ValidationError.field(field, "must be an ISO 8601 date or time") from None

    last = day(to, "to") if to else clock.iso()[:10]
    first = day(from_, "from") if from_ else clock.iso(clock.parse_iso(last) - (default_days - 1) * 86400)[:10]
    if first > last:
        raise ValidationError.field("from", "must not be after to")
    return first, last


def stats(ctx: "Ctx", from_: str | None, to: str | None) -> Stats:
    """From the day aggregates only: one item per day in the range."""
    first, last = _day_range(from_, to)
    items = store.days(ctx.org_id, first, last)
    factories: dict[str, list[int]] = {}
    operations: dict[str, int] = {}
    errors: dict[str, int] = {}
    daily = []
    for item in items:
        daily.append(DailyStat(date=item["date"], total=item.get("total", 0), applied=item.get("applied", 0),
                               failed=item.get("failed", 0)))
        for name, value in item.items():
            if name.startswith("f#"):
                factory, kind = name[2:].rsplit("#", 1)
                pair = factories.setdefault(factory, [0, 0])
                pair[0 if kind == "t" else 1] += int(value)
            elif name.startswith("op#"):
                operations[name[3:]] = operations.get(name[3:], 0) + int(value)
            elif name.startswith("e#"):
                errors[name[2:]] = errors.get(name[2:], 0) + int(value)
    return Stats(
        daily=daily,
        success_rate_by_factory=[FactoryStat(factory=f, total=t, applied=a, rate=round(a / t, 4) if t else 0.0)
                                 for f, (t, a) in sorted(factories.items())],
        operations=operations,
        errors=[ErrorStat(message=m, count=c) for m, c in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))[:50]],
    )


def _trend(key: str, total: int, applied: int, first_at: str | None, last_at: str | None) -> Trend:
    return Trend(key=key, total=total, applied=applied, failed=total - applied,
                 success_rate=round(applied / total, 4) if total else 0.0, first_at=first_at, last_at=last_at)


def trends(ctx: "Ctx", group_by: str, from_: str | None, to: str | None) -> list[Trend]:
    if group_by == "order":
        first, last = _day_range(from_, to, default_days=90)
        out = []
        for item in store.orders_since(ctx.org_id, first, None):
            if (item.get("firstAt") or "") > f"{last}T99":
                continue
            out.append(_trend(item["orderId"], int(item.get("total", 0)), int(item.get("applied", 0)),
                              item.get("firstAt"), item.get("lastAt")))
        return sorted(out, key=lambda t: t.key)
    first, last = _day_range(from_, to, default_days=90)
    groups: dict[str, list[Any]] = {}

    def fold(key: str, total: int, applied: int, first_at: str | None, last_at: str | None) -> None:
        g = groups.setdefault(key, [0, 0, None, None])
        g[0] += total
        g[1] += applied
        if first_at and (g[2] is None or first_at < g[2]):
            g[2] = first_at
        if last_at and (g[3] is None or last_at > g[3]):
            g[3] = last_at

    for item in store.days(ctx.org_id, first, last):
        if group_by == "weekly":
            year, week, _ = datetime.date.fromisoformat(item["date"]).isocalendar()
            fold(f"{year}-W{week:02d}", int(item.get("total", 0)), int(item.get("applied", 0)),
                 item.get("firstAt"), item.get("lastAt"))
        else:
            for name, value in item.items():
                if name.startswith("ph#") and name.endswith("#t"):
                    phase = name[3:-2]
                    fold(phase, int(value), int(item.get(f"ph#{phase}#a", 0)), item.get("firstAt"), item.get("lastAt"))
    return [_trend(k, g[0], g[1], g[2], g[3]) for k, g in sorted(groups.items())]
