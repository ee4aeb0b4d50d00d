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

The number of groups is small (failures are grouped), so the summary reads GSI1.
"""
from __future__ import annotations

from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.config import settings

GROUP_SK = "GROUP"
ALL_PK, SYNC_PK = "OPS#ISSUES", "OPS#SYNC"
WATERMARK_PK = "OPS#WATERMARK"
LOCK_KEY = {"PK": "OPS#LOCK", "SK": "SCAN"}
GITHUB_STATE_KEY = {"PK": "OPS#STATE", "SK": "GITHUB"}


def _table() -> str:
    return settings().main_table


def group_key(fp: str) -> dict:
    return {"PK": f"OPS#GROUP#{fp}", "SK": GROUP_SK}


def index_attrs(fp: str, status: str, severity: str, needs_sync: bool) -> dict:
    return {
        "GSI1PK": ALL_PK, "GSI1SK": fp,
        "GSI2PK": f"OPS#ISSUES#{status}", "GSI2SK": fp,
        "GSI3PK": f"OPS#ISSUES#SEV#{severity}", "GSI3SK": fp,
        # None removes the attribute (dynamo.Update): the group leaves the sparse sync index.
        "GSI4PK": SYNC_PK if needs_sync else None, "GSI4SK": fp if needs_sync else None,
    }


# --- groups ---------------------------------------------------------------------------

def new_group_put(item: dict) -> dynamo.Put:
    return dynamo.Put(_table(), {k: v for k, v in item.items() if v is not None},
                      condition="attribute_not_exists(PK)")


def group_update(fp: str, fields: dict, expect_count: int | None = None) -> dynamo.Update:
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


def get_group(fp: str) -> dict | None:
    return dynamo.get(_table(), group_key(fp), consistent=True)


def get_groups(fps: list[str]) -> dict[str, dict]:
    return {item["fingerprint"]: item for item in dynamo.batch_get(_table(), [group_key(fp) for fp in fps])}


def list_groups(status: str | None, severity: str | None, limit: int, start_key: dict | None) -> dynamo.Page:
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


def all_groups() -> list[dict]:
    return list(dynamo.query_all(_table(), "GSI1PK = :pk", {":pk": ALL_PK}, index="GSI1"))


def groups_to_sync(limit: int = 1000) -> list[dict]:
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


# --- the scan lock ----------------------------------------------------------------------

def acquire_lock(scan_id: str, now_epoch: float, lease_seconds: int) -> bool:
    try:
        dynamo.put(dynamo.Put(_table(), {**LOCK_KEY, "scanId": scan_id, "expiresAt": int(now_epoch) + lease_seconds},
                              condition="attribute_not_exists(PK) OR expiresAt < :now",
                              values={":now": int(now_epoch)}))
        return True
    except dynamo.ConditionFailed:
        return False


def release_lock(scan_id: str) -> None:
    try:
        dynamo.delete(dynamo.Delete(_table(), LOCK_KEY, condition="scanId = :id", values={":id": scan_id}))
    except dynamo.ConditionFailed:
        pass


# --- GitHub sync state -----------------------------------------------------------------

def github_state() -> dict[str, Any]:
    return dynamo.get(_table(), GITHUB_STATE_KEY, consistent=True) or {}


def github_state_put(closed_checked_at: str) -> None:
    dynamo.put(dynamo.Put(_table(), {**GITHUB_STATE_KEY, "closedCheckedAt": closed_checked_at}))


# What commit raises when a condition failed or another transaction met this one: re-read and merge
# again. Named here so the scan catches it without importing chalicelib.aws.
WRITE_LOST = (dynamo.ConditionFailed, dynamo.TransactionConflict)


def commit(writes: list) -> None:
    """Group writes and a watermark: one TransactWriteItems per 100 (the last carries the watermark)."""
    for start in range(0, len(writes), 100):
        chunk = writes[start:start + 100]
        if len(chunk) == 1:
            op = chunk[0]
            if isinstance(op, dynamo.Put):
                dynamo.put(op)
            else:
                dynamo.update(op, return_new=False)
        else:
            dynamo.transact(chunk)
