"""Delivery reports: one item per order, plus the regeneration watermark.

  PK ORG#{org}#REPORT#{orderId}, SK REPORT    the latest report of an order
    GSI1  ORG#{org}#REPORTS / orderId          every report of the org   GET /api/delivery/reports
  PK ORG#{org}#REPORTS, SK WATERMARK           the newest event time already reported
"""
from __future__ import annotations

import json

from chalicelib.aws import dynamo
from chalicelib.core import clock, retention
from chalicelib.core.config import settings


def _table() -> str:
    return settings().main_table


def report_key(org_id: str, order_id: str) -> dict:
    return {"PK": f"ORG#{org_id}#REPORT#{order_id}", "SK": "REPORT"}


def report_put(org_id: str, order_id: str, generated_at: str, summary: dict, markdown: str) -> dynamo.Put:
    return dynamo.Put(_table(), {
        **report_key(org_id, order_id), "type": "report", "orgId": org_id, "orderId": order_id,
        "generatedAt": generated_at, "lastEventAt": summary.get("lastActivityAt") or "",
        # JSON text: the summary's floats and nulls round-trip exactly; never queried.
        "summaryJson": json.dumps(summary, separators=(",", ":")), "markdown": markdown,
        "GSI1PK": f"ORG#{org_id}#REPORTS", "GSI1SK": order_id,
        # REPORT_RETENTION_DAYS after it was (re)generated (DynamoDB TTL; every read below filters it).
        "ttl": retention.expires_at(clock.now(), settings().report_retention_days),
    })


def public(item: dict) -> dict:
    return {"orderId": item["orderId"], "generatedAt": item["generatedAt"],
            "summary": json.loads(item["summaryJson"]), "markdown": item["markdown"]}


def _live(item: dict | None) -> dict | None:
    return None if item is None or retention.is_expired(item.get("ttl"), clock.now()) else item


def get(org_id: str, order_id: str) -> dict | None:
    return _live(dynamo.get(_table(), report_key(org_id, order_id)))


def get_many(org_id: str, order_ids: list[str]) -> dict[str, dict]:
    if not order_ids:
        return {}
    return {i["orderId"]: i for i in dynamo.batch_get(_table(), [report_key(org_id, o) for o in order_ids])
            if _live(i) is not None}


def list_reports(org_id: str, limit: int, start_key: dict | None) -> dynamo.Page:
    live, names, values = retention.live_filter_args(clock.now())
    return dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#REPORTS", **values}, index="GSI1",
                        limit=limit, start_key=start_key, names=names, filter=live)


def watermark_key(org_id: str) -> dict:
    return {"PK": f"ORG#{org_id}#REPORTS", "SK": "WATERMARK"}


def watermark(org_id: str) -> str | None:
    item = dynamo.get(_table(), watermark_key(org_id), consistent=True)
    return item["since"] if item else None


def watermark_put(org_id: str, since: str) -> dynamo.Put:
    return dynamo.Put(_table(), {**watermark_key(org_id), "since": since})
