"""Failed and dead-lettered jobs, for the ops scan (chalicelib/ops): a thin reader over jobs/store.

Failed jobs are read from GSI6, a sparse index that only FAILED writes fill
(jobs/store.failure_index): partition per organization, sorted by failure
time then job id, so "every failure after this cursor" is one Query per page
whatever the number of jobs. Dead letters are peeked (left in the queue,
visibility untouched) from the jobs DLQ.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.jobs import store

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx


def failed_jobs(ctx: "Ctx", after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` failed jobs of ctx's org, failed after the cursor `after`, oldest first:
    ([{jobId, jobType, error, failedAt, cursor, agentId, pool}], the cursor after the last one or None)."""
    out = [{"jobId": f.job_id, "jobType": f.job_type, "error": f.error, "failedAt": f.failed_at, "cursor": f.cursor,
            "agentId": f.agent_id, "pool": f.pool}
           for f in store.failed_jobs(ctx.org_id, after, limit)]
    return out, (out[-1]["cursor"] if out else None)


def dead_letters(limit: int = 10) -> list[dict[str, Any]]:
    """Up to `limit` messages of the jobs DLQ (not consumed): [{messageId, sentAtMs, body}]."""
    return [{"messageId": m.message_id, "sentAtMs": m.sent_at_ms, "body": m.body} for m in store.dead_letters(limit)]


def dead_letter_depth() -> int:
    return store.dead_letter_depth()
