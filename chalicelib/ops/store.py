"""Ops groups (one per fingerprint), scan watermarks, the scan lock: keys and queries.

Platform-wide items (the ops team watches the whole platform, not one tenant):

  PK OPS#GROUP#{fp}, SK GROUP        a group: counts, samples, status, its GitHub issue
    GSI1  OPS#ISSUES             / fp    every group                  GET /api/ops/issues, summary
    GSI2  OPS#ISSUES#{status}    / fp    by status                    ?status=
    GSI3  OPS#ISSUES#SEV#{sev}   / fp    by severity                  ?severity=
    GSI4  OPS#SYNC               / fp    sparse: GitHub has not heard the latest count yet
  PK OPS#WATERMARK, SK {source}#{scope}  where a source's incremental reading continues
  PK OPS#LOCK, SK SCAN                   one scan at a time (a lease that expires)
  PK OPS#STATE, SK GITHUB                when the scan last asked GitHub what was closed
  PK OPS#SCANS, SK {scanId}              one kept scan (GET /api/ops/scans, newest first: ids sort by time);
                                         `ttl`: REPORT_RETENTION_DAYS after it started

The number of groups is small (failures are grouped), so the summary reads GSI1.
"""
from __future__ import annotations

from typing import Any, Union

from chalicelib.aws import dynamo
from chalicelib.core import clock, retention
from chalicelib.core.config import settings
from chalicelib.ops.models import OpsIssue, ScanRecord

GROUP_SK = "GROUP"
ALL_PK, SYNC_PK = "OPS#ISSUES", "OPS#SYNC"
WATERMARK_PK = "OPS#WATERMARK"
LOCK_KEY = {"PK": "OPS#LOCK", "SK": "SCAN"}
GITHUB_STATE_KEY = {"PK": "OPS#STATE", "SK": "GITHUB"}


def _table() -> str:
    return settings().main_table


Item = dict[str, Any]
GroupWrite = Union[dynamo.Put, dynamo.Update]


def group_key(fp: str) -> dict[str, str]:
    return {"PK": f"OPS#GROUP#{fp}", "SK": GROUP_SK}


def index_attrs(fp: str, status: str, severity: str, needs_sync: bool) -> dict[str, Any]:
    return {
        "GSI1PK": ALL_PK, "GSI1SK": fp,
        "GSI2PK": f"OPS#ISSUES#{status}", "GSI2SK": fp,
        "GSI3PK": f"OPS#ISSUES#SEV#{severity}", "GSI3SK": fp,
        # None removes the attribute (dynamo.Update): the group leaves the sparse sync index.
        "GSI4PK": SYNC_PK if needs_sync else None, "GSI4SK": fp if needs_sync else None,
    }


# --- groups ---------------------------------------------------------------------------

def from_item(item: Item) -> OpsIssue:
    """A group's item as the ops issue the API shows (the scan's bookkeeping stays in the item)."""
    return OpsIssue(id=item["fingerprint"], fingerprint=item["fingerprint"], title=item["title"],
                    kind=item["kind"], severity=item["severity"], status=item["status"], count=int(item["count"]),
                    first_seen=item["firstSeen"], last_seen=item["lastSeen"], samples=item.get("samples") or [],
                    normalized=item["key"].split("|", 2)[2], filed=bool(item.get("filed")),
                    github_number=None if item.get("githubNumber") is None else int(item["githubNumber"]),
                    github_url=item.get("githubUrl"), claimed_by=item.get("claimedBy"))


def new_group_put(item: Item) -> dynamo.Put:
    return dynamo.Put(_table(), {k: v for k, v in item.items() if v is not None},
                      condition="attribute_not_exists(PK)")


def group_update(fp: str, fields: Item, expect_count: int | None = None) -> dynamo.Update:
    """SET `fields` (None removes); with `expect_count`, only if no one counted in between."""
    if expect_count is None:
        return dynamo.Update(_table(), group_key(fp), set=fields, condition="attribute_exists(PK)")
    return dynamo.Update(_table(), group_key(fp), set=fields, condition="#cnt = :seen",
                         names={"#cnt": "count"}, values={":seen": expect_count})


def claim_update(fp: str, claimed_by: str, now: str, severity: str) -> dynamo.Update:
    return dynamo.Update(_table(), group_key(fp), set={
        "status": "in_progress", "claimedBy": claimed_by, "claimedAt": now, "updatedAt": now,
        "GSI2PK": "OPS#ISSUES#in_progress", "GSI2SK": fp,
    }, condition="attribute_exists(PK) AND #st <> :closed", names={"#st": "status"}, values={":closed": "closed"})


def get_group(fp: str) -> Item | None:
    return dynamo.get(_table(), group_key(fp), consistent=True)


def get_groups(fps: list[str]) -> dict[str, Item]:
    return {item["fingerprint"]: item for item in dynamo.batch_get(_table(), [group_key(fp) for fp in fps])}


def list_groups(status: str | None, severity: str | None, limit: int, start_key: dict[str, Any] | None) -> dynamo.Page:
    if status:
        index, pk = "GSI2", f"OPS#ISSUES#{status}"
    elif severity:
        index, pk = "GSI3", f"OPS#ISSUES#SEV#{severity}"
    else:
        index, pk = "GSI1", ALL_PK
    flt, values, names = None, {":pk": pk}, None
    if status and severity:
        flt, values, names = "#sev = :sev", {":pk": pk, ":sev": severity}, {"#sev": "severity"}
    return dynamo.query(_table(), f"{index}PK = :pk", values, names=names, index=index, limit=limit,
                        start_key=start_key, filter=flt)


def all_groups() -> list[Item]:
    return list(dynamo.query_all(_table(), "GSI1PK = :pk", {":pk": ALL_PK}, index="GSI1"))


def groups_to_sync(limit: int = 1000) -> list[Item]:
    """Groups whose latest count GitHub has not heard yet (sparse GSI4); read strongly from the table."""
    keys = [i["fingerprint"] for i in
            dynamo.query(_table(), "GSI4PK = :pk", {":pk": SYNC_PK}, index="GSI4", limit=limit).items]
    found = get_groups(keys)
    return [found[k] for k in keys if k in found and found[k].get("GSI4PK") == SYNC_PK]


# --- watermarks ------------------------------------------------------------------------

def watermarks() -> dict[str, str]:
    return {item["SK"]: item["cursor"] for item in
            dynamo.query_all(_table(), "PK = :pk", {":pk": WATERMARK_PK}, consistent=True)}


def watermark_put(source: str, cursor: str, now: str) -> dynamo.Put:
    return dynamo.Put(_table(), {"PK": WATERMARK_PK, "SK": source, "cursor": cursor, "updatedAt": now})


# --- the scan lock (written through the unit of work, as every write) ----------------------

def lock_put(scan_id: str, now_epoch: float, lease_seconds: int) -> dynamo.Put:
    """Take the scan lock: only when no one holds it or its lease ran out."""
    return dynamo.Put(_table(), {**LOCK_KEY, "scanId": scan_id, "expiresAt": int(now_epoch) + lease_seconds},
                      condition="attribute_not_exists(PK) OR expiresAt < :now", values={":now": int(now_epoch)})


def lock_delete(scan_id: str) -> dynamo.Delete:
    """Give the lock back: only this scan's (an expired lease may be someone else's now)."""
    return dynamo.Delete(_table(), LOCK_KEY, condition="scanId = :id", values={":id": scan_id})


# --- GitHub sync state -----------------------------------------------------------------

def github_state() -> dict[str, Any]:
    return dynamo.get(_table(), GITHUB_STATE_KEY, consistent=True) or {}


def github_state_put(closed_checked_at: str) -> dynamo.Put:
    return dynamo.Put(_table(), {**GITHUB_STATE_KEY, "closedCheckedAt": closed_checked_at})


# --- kept scans ------------------------------------------------------------------------------

SCANS_PK = "OPS#SCANS"


def scan_put(record: ScanRecord, started_epoch: float) -> dynamo.Put:
    """A scan as kept (written when it starts, and again when it ends); lives REPORT_RETENTION_DAYS."""
    item = {"PK": SCANS_PK, "SK": record.scan_id, "type": "opsScan",
            **record.model_dump(by_alias=True, exclude_none=True),
            retention.TTL_ATTRIBUTE: retention.expires_at(started_epoch, settings().report_retention_days)}
    return dynamo.Put(_table(), item)


def _scan_of(item: Item) -> ScanRecord:
    return ScanRecord.model_validate({k: v for k, v in item.items() if k not in ("PK", "SK", "type", "ttl")})


def get_scan(scan_id: str) -> ScanRecord | None:
    item = dynamo.get(_table(), {"PK": SCANS_PK, "SK": scan_id}, consistent=True)
    if item is None or retention.is_expired(item.get(retention.TTL_ATTRIBUTE), clock.now()):
        return None
    return _scan_of(item)


def list_scans(limit: int, start_key: dict[str, Any] | None) -> tuple[list[ScanRecord], dict[str, Any] | None]:
    """Newest first, expired ones hidden (DynamoDB deletes them late)."""
    live, names, values = retention.live_filter_args(clock.now())
    page = dynamo.query(_table(), "PK = :pk", {":pk": SCANS_PK, **values}, names=names, limit=limit,
                        start_key=start_key, filter=live, forward=False)
    return [_scan_of(i) for i in page.items], page.last_key
