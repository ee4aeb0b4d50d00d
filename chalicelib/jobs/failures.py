"""Failed and dead-lettered jobs, for the ops scan (chalicelib/ops).

Failed jobs are read from GSI6, a sparse index that only FAILED writes fill
(jobs/store.failure_index): partition per organization, sorted by failure
time then job id, so "every failure after this cursor" is one Query per page
whatever the number of jobs. Dead letters are peeked (left in the queue,
visibility untouched) from the jobs DLQ.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from chalicelib.aws import dynamo, queues
from chalicelib.core.config import settings

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx


def failed_jobs(ctx: "Ctx", after: str | None, limit: int) -> tuple[list[dict], str | None]:
    """Up to `limit` failed jobs of ctx's org, failed after the cursor `after`, oldest first:
    ([{jobId, jobType, error, failedAt, cursor}], the cursor after the last one or None)."""
    condition, values = "GSI6PK = :pk", {":pk": f"ORG#{ctx.org_id}#JOBS#FAILED#AT"}
    if after:
        condition += " AND GSI6SK > :after"
        values[":after"] = after
    page = dynamo.query(settings().main_table, condition, values, index="GSI6", limit=limit)
    out = []
    for item in page.items:
        error = json.loads(item["errorJson"]) if item.get("errorJson") else None
        out.append({"jobId": item["jobId"], "jobType": item.get("jobType", ""), "error": error,
                    "failedAt": item.get("finishedAt") or item["GSI6SK"].split("#", 1)[0],
                    "cursor": item["GSI6SK"]})
    return out, (out[-1]["cursor"] if out else None)


def dead_letters(limit: int = 10) -> list[dict]:
    """Up to `limit` messages of the jobs DLQ (not consumed): [{messageId, sentAt, body}], and its depth."""
    url = settings().jobs_dlq_url
    out = []
    for m in queues.peek(url, limit):
        try:
            body = json.loads(m["body"])
        except ValueError:
            body = {"raw": m["body"][:500]}
        out.append({"messageId": m["messageId"], "sentAtMs": m["sentAtMs"], "body": body})
    return out


def dead_letter_depth() -> int:
    return queues.depth(settings().jobs_dlq_url)
