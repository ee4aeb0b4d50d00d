"""Pure rules of ingest (timestamps, in-batch repeats, chunks) and commands (states, ack decisions)."""
from __future__ import annotations

import pytest

from chalicelib.commands import rules as commands
from chalicelib.ingest import rules as ingest


@pytest.mark.parametrize("given, expected", [
    ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00.000Z"),
    ("2026-12-01T10:00:00.123456Z", "2026-12-01T10:00:00.123Z"),
    ("2026-12-01T12:00:00+02:00", "2026-12-01T10:00:00.000Z"),
    ("2026-12-01T10:00:00", "2026-12-01T10:00:00.000Z"),
])
def test_timestamps_normalize_to_utc_milliseconds(given, expected):
    assert ingest.normalize_ts(given) == expected


@pytest.mark.parametrize("bad", ["yesterday", "", "2026-13-01T00:00:00Z", "x" * 50, "0001-01-01T00:00:00+01:00"])
def test_bad_timestamps_are_rejected(bad):
    with pytest.raises(ValueError):
        ingest.normalize_ts(bad)


def test_first_occurrences_keep_order_and_count_repeats():
    assert ingest.first_occurrences(["a", "b", "a", "c", "b"]) == ([0, 1, 3], 2)


def test_chunks_fit_a_transaction_with_the_agent_check():
    chunks = ingest.chunks(list(range(500)))
    assert [len(c) for c in chunks] == [99, 99, 99, 99, 99, 5]
    assert ingest.CHUNK + 1 <= 100


NOW = "2026-12-01T10:00:00.000Z"


@pytest.mark.parametrize("status, expires, decision", [
    ("pending", "2026-12-01T10:00:01.000Z", commands.AckDecision.APPLY),
    ("pending", NOW, commands.AckDecision.EXPIRED),           # expiresAt is the first expired instant
    ("pending", "2026-12-01T09:00:00.000Z", commands.AckDecision.EXPIRED),
    ("expired", "2026-12-01T09:00:00.000Z", commands.AckDecision.EXPIRED),
    ("acked", "2026-12-01T09:00:00.000Z", commands.AckDecision.REPLAY),  # acked in time stays acked
    ("failed", "2026-12-01T11:00:00.000Z", commands.AckDecision.REPLAY),
])
def test_ack_decisions(status, expires, decision):
    assert commands.decide_ack(status, expires, NOW) is decision


def test_effective_status_only_changes_overdue_pending():
    assert commands.effective_status("pending", "2026-12-01T09:00:00.000Z", NOW) == "expired"
    assert commands.effective_status("pending", "2026-12-01T11:00:00.000Z", NOW) == "pending"
    assert commands.effective_status("acked", "2026-12-01T09:00:00.000Z", NOW) == "acked"
