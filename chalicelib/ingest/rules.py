"""Ingest rules: what a record may look like, and how a batch splits into duplicates and new records. Pure."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable, TypeVar

RECORD_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
TABLE_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
MAX_RECORDS = 500          # per POST /ingest (the 256 KiB body limit usually binds first)
CHUNK = 99                 # records per TransactWriteItems: 100 items minus the agent's active check
MAX_DATA_BYTES = 200 * 1024


def normalize_ts(value: str) -> str:
    """ISO 8601 -> UTC with milliseconds and Z (sorts as text); ValueError otherwise."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp, e.g. 2026-12-01T10:00:00.000Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        parsed = parsed.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 has no UTC time
        raise ValueError("is out of range") from None
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def data_json(data: Any) -> str:
    """ASCII JSON: its length is its size, and a lone surrogate (valid JSON, not UTF-8) stays escaped."""
    return json.dumps(data, separators=(",", ":"))


def first_occurrences(record_ids: Iterable[str]) -> tuple[list[int], int]:
    """Indexes of the first occurrence of each id, and how many repeats the batch itself carried."""
    seen: set[str] = set()
    keep: list[int] = []
    repeats = 0
    for i, record_id in enumerate(record_ids):
        if record_id in seen:
            repeats += 1
        else:
            seen.add(record_id)
            keep.append(i)
    return keep, repeats


T = TypeVar("T")


def chunks(items: list[T], size: int = CHUNK) -> list[list[T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
