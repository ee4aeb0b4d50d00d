"""The ops scan: read failures from every source, group them, file one GitHub issue per group.

Two phases, both resumable:

1. Ingest. Each source is read in pages after its watermark (`incremental`) or
   from the start of its retention (`full`). A page is folded into one
   Aggregate per fingerprint; the groups it touches are read in one
   BatchGetItem and written back with the source's new watermark in one
   TransactWriteItems. A full rescan counts only what lies past the watermark
   for groups that exist (the rest was counted when first seen) and rebuilds a
   group whose record was lost from everything it sees. Cost: items read =
   failures read + groups touched; writes = groups touched, per page.
2. Sync. Groups GitHub has not heard about are in a sparse index. For each:
   no known issue -> search the fingerprint marker (a lost record finds its
   issue) -> else create; a known issue -> comment with the new count, reopen
   first when it was closed. One list call per scan learns which issues
   people closed. GitHub calls are proportional to groups, never to failures.

A scan that runs short of time stops between pages or between groups: the
watermarks and the sync index are the checkpoint, and the next scan
continues. One scan at a time (a lease item); filing never duplicates because
a group's issue number is stored in the same write that takes it out of the
sync index, and a lost number is found again by its marker.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from pydantic import Field

from chalicelib.core import ids
from chalicelib.core.errors import Conflict
from chalicelib.core.tx import MAX_ITEMS, TransactionConflict, TxFailed
from chalicelib.core.redaction import redact
from chalicelib.ops import analysis, rules, sources, store
from chalicelib.ops.github import GitHub, GitHubError, OutOfTime
from chalicelib.ops.models import OpsIssue, ScanRecord, ScanResult, ScanSource

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx

log = logging.getLogger(__name__)

PAGE = 500
RESERVE_SECONDS = 3.0     # stop this long before the deadline: the last writes must land
LOCK_SECONDS = 900        # a Lambda runs at most 15 minutes: a crashed scan's lock expires after that
LABEL = "ops"
MAX_SOURCE_ERRORS = 20    # error messages a kept scan keeps per kind of source


class ScanStats(ScanResult):
    """The scan's running tally: the result it answers with (the excluded counters stay in the scan)."""

    writes: int = Field(default=0, exclude=True)
    github_errors: int = Field(default=0, exclude=True)
    sources_read: list[str] = Field(default_factory=list, exclude=True)
    # What the kept scan record shows (GET /api/ops/scans): per kind of source, items read and errors;
    # the distinct groups the scan wrote.
    by_source: dict[str, ScanSource] = Field(default_factory=dict, exclude=True)
    fingerprints: set[str] = Field(default_factory=set, exclude=True)

    @classmethod
    def start(cls, scan_id: str, scope: str) -> "ScanStats":
        return cls(scan_id=scan_id, scope=scope, ingested=0, issues_opened=0, issues_updated=0)

    def source(self, key: str) -> ScanSource:
        kind = key.split("#", 1)[0]
        return self.by_source.setdefault(kind, ScanSource(name=kind, read=0, errors=[]))

    def record(self, started_at: str, finished_at: str | None, error: str | None = None) -> ScanRecord:
        return ScanRecord(scan_id=self.scan_id, scope=self.scope, started_at=started_at, finished_at=finished_at,
                          sources=list(self.by_source.values()), groups=len(self.fingerprints),
                          issues_opened=self.issues_opened, issues_updated=self.issues_updated,
                          ingested=self.ingested, not_filed=self.not_filed, github_calls=self.github_calls,
                          checkpointed=self.checkpointed, error=error)


# What a commit of group writes raises when a condition failed or another transaction met it:
# read again and merge again.
WRITE_LOST = (TxFailed, TransactionConflict)


def commit(ctx: "Ctx", writes: list[tuple[str, store.GroupWrite]]) -> None:
    """Named writes in units of work of at most 100 (one TransactWriteItems each; the last carries
    the watermark). A failed condition raises TxFailed(name)."""
    for start in range(0, len(writes), MAX_ITEMS):
        tx = ctx.tx()
        for name, write in writes[start:start + MAX_ITEMS]:
            tx.add(name, write)
        tx.commit()


def acquire_lock(ctx: "Ctx", scan_id: str) -> bool:
    tx = ctx.tx()
    tx.put("lock", store.lock_put(scan_id, ctx.now(), LOCK_SECONDS))
    try:
        tx.commit()
    except TxFailed:
        return False
    return True


def release_lock(ctx: "Ctx", scan_id: str) -> None:
    tx = ctx.tx()
    tx.delete("lock", store.lock_delete(scan_id))
    try:
        tx.commit()
    except TxFailed:
        pass  # the lease ran out and another scan holds the lock now: it is theirs to give back


def marker_key(ctx: "Ctx") -> bytes:
    """The key of the issues' markers (rules.marker): derived from the deployment's API key pepper (Secrets
    Manager on AWS, API_KEY_PEPPER locally), which no tenant knows. Rotating the pepper orphans the markers
    of issues already filed (docs/OPS.md): their groups keep their stored issue numbers."""
    return hmac.new(ctx.settings.api_key_pepper.encode(), b"ops-issue-marker/v1", hashlib.sha256).digest()


def github_client(ctx: "Ctx", seconds_left: Callable[[], float]) -> GitHub | None:
    s = ctx.settings
    if not s.github_token or not s.github_repo:
        return None
    return GitHub(s.github_token, s.github_repo, s.github_api_url, seconds_left=seconds_left)


def ci_client(ctx: "Ctx", issues: GitHub | None, seconds_left: Callable[[], float]) -> GitHub | None:
    """The client the CI source reads with: the issues client, or one with the token alone (the CI
    source reads the organizations' allow-listed repositories, not GITHUB_REPO)."""
    if issues is not None:
        return issues
    s = ctx.settings
    return GitHub(s.github_token, "", s.github_api_url, seconds_left=seconds_left) if s.github_token else None


def run(ctx: "Ctx", scope: str, deadline: float, org_ids: list[str] | None = None,
        gh: GitHub | None = None, use_github: bool = True) -> ScanResult:
    """One scan; `deadline` is an epoch time (the function's end). Raises Conflict if one is running.
    Every scan is kept (keep_scan): when it starts, and again when it ends, however it ends."""
    from chalicelib.orgs import service as orgs

    def seconds_left() -> float:
        return deadline - time.time() - RESERVE_SECONDS

    stats = ScanStats.start(ids.new_id(), scope)
    if not acquire_lock(ctx, stats.scan_id):
        raise Conflict("an ops scan is already running; try again when it has finished")
    started = ctx.now()
    error: str | None = None
    try:
        keep_scan(ctx, stats.record(ctx.iso(started), None), started)
        orgs_to_scan = org_ids if org_ids is not None else list(orgs.org_ids(ctx))
        client = gh if gh is not None else (github_client(ctx, seconds_left) if use_github else None)
        reader = ci_client(ctx, client, seconds_left) if use_github else None
        calls_before = reader.calls if reader is not None else 0
        ingest(ctx, scope, sources.all_sources(ctx, orgs_to_scan, ctx.settings.ops_log_group_prefix, reader),
               seconds_left, stats)
        if reader is not None:
            stats.github_calls += reader.calls - calls_before
        if not stats.checkpointed:
            sync(ctx, client, seconds_left, stats)
    except Exception as failure:
        error = redact(f"{type(failure).__name__}: {failure}")[:500]
        raise
    finally:
        release_lock(ctx, stats.scan_id)
        try:
            keep_scan(ctx, stats.record(ctx.iso(started), ctx.iso(), error), started)
        except Exception:  # noqa: BLE001 - the scan's own outcome (or error) matters more than its record
            log.exception("ops scan record not kept", extra={"scanId": stats.scan_id})
    log.info("ops scan", extra=stats.model_dump(by_alias=True))
    return stats


def keep_scan(ctx: "Ctx", record: ScanRecord, started: float) -> None:
    tx = ctx.tx()
    tx.put("scan", store.scan_put(record, started))
    tx.commit()


# --- ingest -----------------------------------------------------------------------------

def ingest(ctx: "Ctx", scope: str, all_sources: list[sources.Source], seconds_left: Callable[[], float],
           stats: ScanStats) -> None:
    marks = store.watermarks()
    stats.items_read += len(marks)
    for source in all_sources:
        stats.source(source.key)  # every kind of source read shows in the kept scan, with what it gave
        mark = marks.get(source.key)
        after = None if scope == "full" else mark
        while True:
            if seconds_left() <= 0:
                stats.checkpointed = True
                return
            try:
                page = source.read(after, PAGE)
            except sources.SourceUnavailable as unavailable:
                tally = stats.source(source.key)
                if len(tally.errors) < MAX_SOURCE_ERRORS:
                    tally.errors.append(redact(str(unavailable))[:300])
                log.warning("ops source unavailable", extra={"source": source.key, "error": str(unavailable)})
                break
            except OutOfTime:
                stats.checkpointed = True  # a rate limit longer than the time left: the next scan goes on
                return
            stats.items_read += page.read
            stats.source(source.key).read += page.read
            if page.cursor is None:
                break
            pairs = [(f, mark is None or f.cursor > mark) for f in page.failures]
            new_mark = max(mark or "", page.cursor)
            _fold(ctx, pairs, source.key, new_mark if new_mark != (mark or "") else None, stats)
            mark = new_mark
            stats.ingested += len(page.failures)
            if not page.more:
                break
            after = page.cursor
        stats.sources_read.append(source.key)


def _fold(ctx: "Ctx", pairs: list[tuple[rules.Failure, bool]], source_key: str, new_mark: str | None,
          stats: ScanStats) -> None:
    aggregates = rules.aggregate(pairs)
    for attempt in range(3):
        stored = store.get_groups(list(aggregates))
        stats.items_read += len(stored)
        writes: list[tuple[str, store.GroupWrite]] = []
        for fp, agg in aggregates.items():
            before = stored.get(fp)
            if before is not None and agg.new_count == 0:
                continue  # a full rescan passing over what was already counted
            state = rules.merge(before, agg)
            writes.append((f"group:{fp}", _group_write(ctx, fp, agg, before, state)))
        if new_mark is not None:
            writes.append(("watermark", store.watermark_put(source_key, new_mark, ctx.iso())))
        try:
            commit(ctx, writes)
        except WRITE_LOST:
            if attempt == 2:
                raise
            continue  # a claim or another writer touched a group: read again, merge again
        stats.writes += len(writes)
        stats.groups_touched += len(writes) - (1 if new_mark is not None else 0)
        stats.fingerprints.update(name.split(":", 1)[1] for name, _ in writes if name.startswith("group:"))
        return


def _group_write(ctx: "Ctx", fp: str, agg: rules.Aggregate, before: store.Item | None,
                 state: rules.GroupState) -> store.GroupWrite:
    now = ctx.iso()
    common: dict[str, Any] = {"count": state.count, "firstSeen": state.first_seen, "lastSeen": state.last_seen,
              "samples": state.samples, "severity": state.severity, "updatedAt": now}
    if state.traceback:
        common["traceback"] = state.traceback
    if before is None:
        return store.new_group_put({
            **store.group_key(fp), "type": "opsGroup", "id": fp, "fingerprint": fp, "kind": agg.kind,
            "key": agg.key, "title": agg.title, "baseSeverity": agg.base_severity, "status": "open",
            "reportedCount": 0, "filed": False, "createdAt": now, **common,
            **store.index_attrs(fp, "open", state.severity, needs_sync=True),
        })
    # A closed group that recurs is open again (sync reopens its GitHub issue).
    status = "open" if before.get("status") == "closed" else before.get("status", "open")
    return store.group_update(fp, {**common, "status": status,
                                   **store.index_attrs(fp, status, state.severity, needs_sync=True)},
                              expect_count=int(before.get("count", 0)))


# --- sync with GitHub -------------------------------------------------------------------

def sync(ctx: "Ctx", gh: GitHub | None, seconds_left: Callable[[], float], stats: ScanStats) -> None:
    pending = store.groups_to_sync()
    stats.items_read += len(pending)
    if gh is None:
        # No token: the groups are recorded and stay in the sync index, marked not filed,
        # so the first scan with a token files them.
        stats.not_filed = len(pending)
        return
    calls_before = gh.calls
    key = marker_key(ctx)
    try:
        _learn_closed(ctx, gh, {g["fingerprint"]: g for g in pending}, key)
        for group in pending:
            if seconds_left() <= 0:
                stats.checkpointed = True
                break
            try:
                _file(ctx, gh, group, stats, key)
            except GitHubError as error:
                # This group stays in the sync index; the next scan tries again (and searches its
                # marker first, so an issue created before the error is found, not duplicated).
                stats.github_errors += 1
                log.warning("github filing failed", extra={"fingerprint": group["fingerprint"],
                                                             "status": error.status, "error": error.message})
    except OutOfTime:
        stats.checkpointed = True
    except GitHubError as error:
        stats.github_errors += 1
        log.warning("github unavailable", extra={"status": error.status, "error": error.message})
    finally:
        stats.github_calls += gh.calls - calls_before


def _learn_closed(ctx: "Ctx", gh: GitHub, pending: dict[str, store.Item], key: bytes) -> None:
    """Which of our issues people closed since the last look (one list call): mark them closed. An issue
    counts only through the scan's own marker (first line, right MAC), and only for the group whose issue
    it is (the group's stored number, when it has one)."""
    started = ctx.iso()
    since = store.github_state().get("closedCheckedAt")
    for issue in gh.closed_since(LABEL, since):
        fp = rules.marker_in(issue.get("body"), key)
        keyed = fp is not None
        if fp is None:  # an issue filed before keyed markers: believed only if the group's stored number agrees
            fp = rules.legacy_marker_in(issue.get("body"))
        if fp is None:
            continue
        group = pending.get(fp) or store.get_group(fp)
        if group is None or group.get("githubState") == "closed":
            continue
        stored_number = group.get("githubNumber")
        if (stored_number is None and not keyed) or (stored_number is not None
                                                     and int(stored_number) != int(issue["number"])):
            continue
        fields: dict[str, Any] = {"githubState": "closed", "githubNumber": issue["number"], "githubUrl": issue.get("html_url")}
        if fp not in pending:  # nothing new since: the group is done
            fields.update(status="closed", **{k: v for k, v in store.index_attrs(
                fp, "closed", group["severity"], needs_sync=False).items() if k.startswith("GSI2")})
        commit(ctx, [("group", store.group_update(fp, fields))])
        group.update(fields)
    tx = ctx.tx()
    tx.put("githubState", store.github_state_put(started))
    tx.commit()


def _file(ctx: "Ctx", gh: GitHub, group: store.Item, stats: ScanStats, key: bytes) -> None:
    fp = group["fingerprint"]
    number = group.get("githubNumber")
    url = group.get("githubUrl")
    previous = int(group.get("reportedCount") or 0)
    was_closed = group.get("githubState") == "closed"
    action = "commented"
    if number is None:
        found = gh.find_by_marker(rules.marker_text(fp, key), lambda body: rules.marker_in(body, key) == fp)
        if found is not None:
            number, url, was_closed = found["number"], found.get("html_url"), found.get("state") == "closed"
        else:
            issue = gh.create_issue(rules.issue_title(group),
                                    rules.issue_body(group, key, analysis.probable_cause(ctx, group)),
                                    [LABEL, f"severity:{group['severity']}"])
            number, url, action = issue["number"], issue.get("html_url"), "opened"
    if action != "opened":
        if was_closed:
            gh.update_issue(number, state="open", state_reason="reopened")
            action = "reopened"
        gh.comment(number, rules.recurrence_comment(group, previous, action == "reopened"))
    status = "open" if group.get("status") in (None, "closed") else group["status"]
    fields = {"githubNumber": number, "githubUrl": url, "githubState": "open", "filed": True,
              "reportedCount": group["count"], "reportedAt": ctx.iso(), "status": status,
              **store.index_attrs(fp, status, group["severity"], needs_sync=False)}
    tx = ctx.tx()
    tx.update("group", store.group_update(fp, fields, expect_count=int(group["count"])))
    tx.emit("ops:issue", event_data(store.from_item({**group, **fields}), action))
    try:
        tx.commit()
    except WRITE_LOST:  # the count moved (cannot under the lock) or the record vanished: next scan re-syncs
        log.warning("ops group changed while filing", extra={"fingerprint": fp})
    if action == "opened":
        stats.issues_opened += 1
    else:
        stats.issues_updated += 1


def event_data(issue: OpsIssue, action: str) -> dict[str, Any]:
    """ops:issue's data (events/catalog.py OpsIssueChanged): the issue's fields the event carries, every one."""
    return {"id": issue.id, "action": action, "title": issue.title, "severity": issue.severity,
            "status": issue.status, "count": issue.count, "githubNumber": issue.github_number,
            "githubUrl": issue.github_url}
