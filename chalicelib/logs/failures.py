"""ERROR instance log entries of an organization, for the ops scan (chalicelib/ops).

Read from GSI2's sparse, org-wide ERROR partition (logs/store.error_partition,
filled at push time for level ERROR only), sorted by entry id (its time part
is the entry's timestamp): one Query per page after a cursor.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.aws import dynamo
from chalicelib.core.config import settings
from chalicelib.logs import store

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx


def error_entries(ctx: "Ctx", after: str | None, limit: int) -> tuple[list[dict], str | None]:
    """Up to `limit` ERROR entries of ctx's org after entry id `after`, oldest first, and the last id."""
    condition, values = "GSI2PK = :pk", {":pk": store.error_partition(ctx.org_id)}
    if after:
        condition += " AND GSI2SK > :after"
        values[":after"] = after
    page = dynamo.query(settings().main_table, condition, values, index="GSI2", limit=limit)
    entries = [{**store.LogEntry.from_item(item).public(), "cursor": item["id"]} for item in page.items]
    return entries, (entries[-1]["cursor"] if entries else None)
