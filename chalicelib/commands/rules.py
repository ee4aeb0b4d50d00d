"""Command states and what an ack does to them. Pure.

  pending --ack(acked|failed)--> acked | failed      (first ack wins; a later ack replays it)
  pending --ttlSeconds pass--> expired               (an ack after that is 409 INVALID_TRANSITION)

A pending command past its expiresAt is expired even before the sweep
(schedule `commands_expire`) writes it so: reads and acks decide by the clock.

Priority: high | normal (default) | low. Pending commands are listed (and so delivered to a
polling gateway) highest first, oldest first within a priority: the sort key of the pending list
is `{rank}#{commandId}` (rank 0 high, 1 normal, 2 low; ids are ULIDs, so time-ordered), and one
Query returns that order with no sort in memory.
"""
from __future__ import annotations

import enum

PENDING, ACKED, FAILED, EXPIRED = "pending", "acked", "failed", "expired"
STATUSES = (PENDING, ACKED, FAILED, EXPIRED)
OUTCOMES = (ACKED, FAILED)
DEFAULT_TTL_SECONDS = 3600
MAX_TTL_SECONDS = 7 * 24 * 3600
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_RESULT_BYTES = 32 * 1024  # payload + result ride in command:acked: under the WebSocket's 128 KB per message
TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$"
HIGH, NORMAL, LOW = "high", "normal", "low"
PRIORITIES = (HIGH, NORMAL, LOW)  # highest first: the index is the rank in the sort key
DEFAULT_PRIORITY = NORMAL


def pending_sort_key(priority: str, command_id: str) -> str:
    """The pending list's sort key: ascending order is highest priority first, then oldest first."""
    return f"{PRIORITIES.index(priority)}#{command_id}"


class AckDecision(enum.Enum):
    APPLY = "apply"        # pending and in time: record this outcome
    REPLAY = "replay"      # already acked or failed: answer the first outcome
    EXPIRED = "expired"    # too late


def effective_status(status: str, expires_at: str, now_iso: str) -> str:
    if status == PENDING and expires_at <= now_iso:
        return EXPIRED
    return status


def decide_ack(status: str, expires_at: str, now_iso: str) -> AckDecision:
    current = effective_status(status, expires_at, now_iso)
    if current in OUTCOMES:
        return AckDecision.REPLAY
    if current == EXPIRED:
        return AckDecision.EXPIRED
    return AckDecision.APPLY
