"""ERROR instance log entries of an organization, for the ops scan (chalicelib/ops): a thin reader over logs/store.

Read from GSI2's sparse, org-wide ERROR partition (logs/store.error_partition,
filled at push time for level ERROR only), sorted by entry id (its time part
is the entry's timestamp): one Query per page after a cursor.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.logs import store

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx


def error_entries(ctx: "Ctx", after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` ERROR entries of ctx's org after entry id `after`, oldest first, and the last id."""
    entries = [{**e.as_json(), "cursor": e.entry_id} for e in store.error_entries(ctx.org_id, after, limit)]
    return entries, (entries[-1]["cursor"] if entries else None)
