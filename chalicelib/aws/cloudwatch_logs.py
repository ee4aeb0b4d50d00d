"""The one place that reads CloudWatch Logs (the ops scan reads the project's own functions' logs)."""
from __future__ import annotations

from typing import Any

from chalicelib.aws import clients


def log_groups(prefix: str, limit: int = 50) -> list[str]:
    """Names of the log groups starting with `prefix` (the project's functions)."""
    logs = clients.client("logs")
    names: list[str] = []
    token = None
    while len(names) < limit:
        args: dict[str, Any] = {"logGroupNamePrefix": prefix, "limit": 50}
        if token:
            args["nextToken"] = token
        response = logs.describe_log_groups(**args)
        names.extend(g["logGroupName"] for g in response.get("logGroups", []))
        token = response.get("nextToken")
        if not token:
            break
    return names[:limit]


def filter_events(group: str, pattern: str, start_ms: int, limit: int = 1000,
                  next_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of events matching `pattern` (plain or quoted terms: moto understands only those)
    at or after `start_ms`: ([{eventId, timestamp, message, logStreamName}], next token)."""
    args: dict[str, Any] = {"logGroupName": group, "filterPattern": pattern, "startTime": start_ms,
                            "limit": max(1, min(10000, limit))}
    if next_token:
        args["nextToken"] = next_token
    response = clients.client("logs").filter_log_events(**args)
    events = [{"eventId": e.get("eventId", ""), "timestamp": int(e["timestamp"]), "message": e.get("message", ""),
               "logStreamName": e.get("logStreamName", "")} for e in response.get("events", [])]
    return events, response.get("nextToken")
