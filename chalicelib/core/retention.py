"""Item lifetimes: pure rules, no AWS (the table of every item kind is in docs/ARCHITECTURE.md).

Every item that expires carries its end of life as epoch seconds in the table's
TTL attribute (`ttl` in the main and outbox tables, `expiration` in the
idempotency table). DynamoDB deletes such items late (typically within days),
so every read filters them (`LIVE_FILTER`), and the retention sweep
(chalicelib/retention) deletes what TTL has not yet: on the local stack, whose
embedded DynamoDB keeps expired items forever, it is the only deleter.
"""
from __future__ import annotations

import math
from decimal import Decimal

SECONDS_PER_DAY = 86400
TTL_ATTRIBUTE = "ttl"

# A FilterExpression keeping items whose lifetime has not ended (and items with no lifetime).
# Needs names {"#ttl": "ttl"} and values {":now": <epoch seconds>} (`live_filter_args`).
LIVE_FILTER = "(attribute_not_exists(#ttl) OR #ttl > :now)"


def expires_at(created_at: float, days: float) -> int:
    """The epoch second an item created at `created_at` (epoch seconds) reaches the end of a
    lifetime of `days` (fractions allowed; a negative lifetime counts as none). Rounded up, so an
    item never expires before its full lifetime."""
    return math.ceil(created_at + max(0.0, days) * SECONDS_PER_DAY)


def is_expired(ttl: object, now: float) -> bool:
    """Whether an item whose TTL attribute holds `ttl` is past its lifetime at `now`.

    No TTL (None, or a value DynamoDB's TTL would ignore: not a number) means it never expires, as
    DynamoDB treats it; a TTL equal to `now` has expired (DynamoDB deletes at or after that second)."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float, Decimal)):
        return False
    return float(ttl) <= now


def live_filter_args(now: float) -> tuple[str, dict[str, str], dict[str, int]]:
    """(filter, names, values) for a Query that hides items past their lifetime at `now`."""
    return LIVE_FILTER, {"#ttl": TTL_ATTRIBUTE}, {":now": int(now)}


def cutoff(now: float, days: float) -> float:
    """The epoch second before which something `days` old was created (the sweeps' age test)."""
    return now - max(0.0, days) * SECONDS_PER_DAY
