"""The rules of sessions, pure: statuses, the 25 (from, to) answers, paging arithmetic, retention.

    pending -> active -> completed | failed | expired;  pending -> expired

Every (from, to) pair has one answer (docs/SESSIONS.md draws the table):
  MOVE     the status changes (the write is conditional on `from`, so two
           concurrent moves cannot both win);
  NOOP     pending -> pending, active -> active: nothing is written, 200 with
           the session as it is (a retried "activate" is harmless);
  INVALID  409 INVALID_TRANSITION. Terminal states never change, and a
           terminal state asked again is INVALID too: exactly one caller is
           ever told "you completed this session", the others learn they lost.
"""
from __future__ import annotations

import enum
import math
from typing import Any

from chalicelib.core.transitions import Answer, judge


class Status(str, enum.Enum):
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.EXPIRED})
OPEN = frozenset(set(Status) - TERMINAL)

MOVES: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.ACTIVE, Status.EXPIRED}),
    Status.ACTIVE: frozenset({Status.COMPLETED, Status.FAILED, Status.EXPIRED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.EXPIRED: frozenset(),
}


def transition(current: Status, wanted: Status) -> Answer:
    return judge(MOVES, current, wanted)


def may_edit(current: Status) -> bool:
    """taskId and metadata change only while the session is open: a terminal session is a record."""
    return not current.terminal


def merge_metadata(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Top-level merge (RFC 7396 at depth one): each key of `patch` replaces that key, null removes it."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


# --- paging -----------------------------------------------------------------

PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 20, 100


def page_window(page: int, page_size: int) -> tuple[int, int]:
    """(keys to skip, keys to read) for page `page` (1-based): page k reads k x pageSize keys."""
    return (page - 1) * page_size, page * page_size


def pages(total: int, page_size: int) -> int:
    return max(1, math.ceil(total / page_size))


# --- retention ----------------------------------------------------------------

def retention_cutoff_ms(now: float, retention_days: float) -> int:
    """Sessions created before this instant (epoch ms) and still open are expired."""
    return int((now - retention_days * 86400) * 1000)
