"""Delivery reports: one item per order, plus the regeneration watermark.

  PK ORG#{org}#REPORT#{orderId}, SK REPORT    the latest report of an order
    GSI1  ORG#{org}#REPORTS / orderId          every report of the org   GET /api/delivery/reports
  PK ORG#{org}#REPORTS, SK WATERMARK           the newest event time already reported
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core import clock, retention
from chalicelib.core.config import settings
from chalicelib.reports.models import Report


def _table() -> str:
    return settings().main_table


def report_key(org_id: str, order_id: str) -> dict[str, str]:
    return {"PK": f"ORG#{org_id}#REPORT#{order_id}", "SK": "REPORT"}


def last_event_at(report: Report) -> str:
    """The newest event time a report covers ("" for none): regeneration compares it with the order's."""
    return str(report.summary.get("lastActivityAt") or "")


def to_item(org_id: str, report: Report) -> dict[str, Any]:
    return {
        **report_key(org_id, report.order_id), "type": "report", "orgId": org_id, "orderId": report.order_id,
        "generatedAt": report.generated_at, "lastEventAt": last_event_at(report),
        # JSON text: the summary's floats and nulls round-trip exactly; never queried.
        "summaryJson": json.dumps(report.summary, separators=(",", ":")), "markdown": report.markdown,
        "GSI1PK": f"ORG#{org_id}#REPORTS", "GSI1SK": report.order_id,
        # REPORT_RETENTION_DAYS after it was (re)generated (DynamoDB TTL; every read below filters it).
        "ttl": retention.expires_at(clock.now(), settings().report_retention_days),
    }


def from_item(item: dict[str, Any]) -> Report:
    return Report(order_id=item["orderId"], generated_at=item["generatedAt"],
                  summary=json.loads(item["summaryJson"]), markdown=item["markdown"])


def report_put(org_id: str, report: Report) -> dynamo.Put:
    return dynamo.Put(_table(), to_item(org_id, report))


def _live(item: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if item is None or retention.is_expired(item.get("ttl"), clock.now()) else item


def get(org_id: str, order_id: str) -> Report | None:
    item = _live(dynamo.get(_table(), report_key(org_id, order_id)))
    return from_item(item) if item is not None else None


def get_many(org_id: str, order_ids: list[str]) -> dict[str, Report]:
    if not order_ids:
        return {}
    return {i["orderId"]: from_item(i)
            for i in dynamo.batch_get(_table(), [report_key(org_id, o) for o in order_ids]) if _live(i) is not None}


def list_reports(org_id: str, limit: int, start_key: dict[str, Any] | None) -> tuple[list[Report], dict[str, Any] | None]:
    """A page of the org's reports by orderId, and the key to continue from (None on the last page)."""
    live, names, values = retention.live_filter_args(clock.now())
    page = dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#REPORTS", **values}, index="GSI1",
                        limit=limit, start_key=start_key, names=names, filter=live)
    return [from_item(i) for i in page.items], page.last_key


def watermark_key(org_id: str) -> dict[str, str]:
    return {"PK": f"ORG#{org_id}#REPORTS", "SK": "WATERMARK"}


def watermark(org_id: str) -> str | None:
    item = dynamo.get(_table(), watermark_key(org_id), consistent=True)
    return item["since"] if item else None


def watermark_put(org_id: str, since: str) -> dynamo.Put:
    return dynamo.Put(_table(), {**watermark_key(org_id), "since": since})
