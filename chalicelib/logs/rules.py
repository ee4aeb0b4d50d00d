"""Instance log rules: levels, timestamps, the sort key, event chunks. Pure: no AWS here.

Order. Entries are ordered by (timestamp, id). An entry's id is a ULID whose
48-bit time part *is* the entry's timestamp in milliseconds (ids.new_ids), so
id order is (timestamp, id) order and the id alone is the sort key of every
log query. `since` (strictly after) becomes an exclusive lower bound on that
key: an ISO timestamp T -> "after the largest ULID of T's millisecond"; a log
entry id -> "after that entry" (a lossless cursor when many entries share a
timestamp).
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from chalicelib.core import ids

LEVELS = ("INFO", "WARN", "ERROR", "DEBUG", "TRACE")
MAX_ENTRIES = 500
MAX_MESSAGE_CHARS = 32 * 1024
MAX_ENTRY_BYTES = 64 * 1024        # one entry as JSON: always fits one WebSocket message
MAX_EVENT_BYTES = 100 * 1024       # entries per instance:log event (API Gateway's limit is 128 KB)
MAX_FUTURE_MS = 24 * 3600 * 1000   # an agent's clock may be ahead, not a day ahead
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ULID = re.compile(r"[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}")
# JSON Schema (ECMA 262) has no inline (?i): spell the case-insensitivity out.
LEVEL_PATTERN = "^(" + "|".join("".join(f"[{c}{c.lower()}]" for c in level) for level in LEVELS) + ")$"


def parse_level(text: str) -> str:
    level = text.strip().upper() if isinstance(text, str) else ""
    if level not in LEVELS:
        raise ValueError(f"must be one of {', '.join(LEVELS)} (any case)")
    return level


def parse_timestamp_ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time (naive = UTC), truncated to the millisecond."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError):
        raise ValueError("must be an ISO 8601 time, e.g. 2026-11-22T10:00:00.000Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def format_ms(ms: int) -> str:
    moment = EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def check_entry_time(ms: int, now_ms: int) -> str | None:
    """Why an entry's timestamp cannot be stored, or None."""
    if ms < 0:
        return "must not be before 1970-01-01T00:00:00Z"
    if ms > now_ms + MAX_FUTURE_MS:
        return "must not be more than 24 hours in the future"
    return None


def since_bound(since: str | None) -> str | None:
    """The exclusive lower bound on the sort key for `since`, None for no bound.

    Raises ValueError for text that is neither an ISO time nor a log entry id."""
    if since is None or since == "":
        return None
    text = since.strip()
    if ULID.fullmatch(text) and text[0] in "01234567":
        return text.upper()
    ms = parse_timestamp_ms(text)
    if ms < 0:
        return None  # before every storable entry
    return ids.time_bound(ms, upper=True)


def entry_json(entry: dict[str, Any]) -> str:
    return json.dumps(entry, separators=(",", ":"))


def chunks(entries: Iterable[dict[str, Any]], max_bytes: int = MAX_EVENT_BYTES) -> list[list[dict[str, Any]]]:
    """Consecutive groups whose JSON stays under max_bytes (an entry larger than that travels alone)."""
    groups: list[list[dict[str, Any]]] = []
    size = 0
    for entry in entries:
        n = len(entry_json(entry).encode()) + 1
        if groups and size + n <= max_bytes:
            groups[-1].append(entry)
            size += n
        else:
            groups.append([entry])
            size = n
    return groups
