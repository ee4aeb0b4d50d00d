"""Pure log rules: levels, timestamps, the since bound, event chunks, batch ids."""
from __future__ import annotations

import json

import pytest

from chalicelib.core import ids
from chalicelib.logs import rules


@pytest.mark.parametrize("text, level", [("INFO", "INFO"), ("warn", "WARN"), ("Error", "ERROR"), (" debug ", "DEBUG"),
                                         ("tRaCe", "TRACE")])
def test_levels_are_case_insensitive(text, level):
    assert rules.parse_level(text) == level


@pytest.mark.parametrize("text", ["WARNING", "", "FATAL", "info!", None])
def test_unknown_levels(text):
    with pytest.raises(ValueError):
        rules.parse_level(text)


def test_level_pattern_matches_exactly_the_levels_in_any_case():
    import re

    pattern = re.compile(rules.LEVEL_PATTERN)
    assert all(pattern.match(v) for v in ["INFO", "info", "WaRn", "error", "Debug", "trace"])
    assert not any(pattern.match(v) for v in ["WARNING", "inf", "", "INFO "])


@pytest.mark.parametrize("text, ms", [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:00.001Z", 1),
    ("1970-01-01T00:00:00.0019Z", 1),          # truncated, never rounded up
    ("1970-01-01T01:00:00+01:00", 0),
    ("1970-01-01T00:00:01", 1000),              # naive = UTC
    ("2026-11-01T10:00:00.123z", 1793527200123),
])
def test_timestamps(text, ms):
    assert rules.parse_timestamp_ms(text) == ms


@pytest.mark.parametrize("text", ["yesterday", "", "2026-13-01T00:00:00Z", "1700000000"])
def test_bad_timestamps(text):
    with pytest.raises(ValueError):
        rules.parse_timestamp_ms(text)


def test_format_ms_round_trips():
    for ms in (0, 1, 999, 1793527200123, 253402300799999):
        assert rules.parse_timestamp_ms(rules.format_ms(ms)) == ms
    assert rules.format_ms(1793527200123) == "2026-11-01T10:00:00.123Z"


def test_entry_time_window():
    now = 1_800_000_000_000
    assert rules.check_entry_time(now, now) is None
    assert rules.check_entry_time(0, now) is None
    assert rules.check_entry_time(-1, now)
    assert rules.check_entry_time(now + rules.MAX_FUTURE_MS, now) is None
    assert rules.check_entry_time(now + rules.MAX_FUTURE_MS + 1, now)


def test_since_is_strictly_after_every_entry_of_that_millisecond():
    ms = rules.parse_timestamp_ms("2026-11-01T10:00:00.500Z")
    same = ids.new_ids([ms] * 3)
    later = ids.new_ids([ms + 1])[0]
    bound = rules.since_bound("2026-11-01T10:00:00.500Z")
    assert all(i <= bound for i in same) and later > bound
    # sub-millisecond precision: .5004 is after .500 entries and before .501 ones
    assert rules.since_bound("2026-11-01T10:00:00.5004Z") == bound
    assert rules.since_bound("1960-01-01T00:00:00Z") is None
    assert rules.since_bound(None) is None


def test_since_may_be_an_entry_id():
    entry_id = ids.new_id()
    assert rules.since_bound(entry_id) == entry_id
    assert rules.since_bound(entry_id.lower()) == entry_id


def test_batch_ids_sort_by_time_then_batch_order():
    times = [5, 3, 5, 5, 3, 9]
    made = ids.new_ids(times)
    order = sorted(range(len(times)), key=lambda i: made[i])
    assert order == [1, 4, 0, 2, 3, 5]
    assert ids.new_ids(times, seed=b"k" * 32) == ids.new_ids(times, seed=b"k" * 32)
    assert ids.new_ids(times, seed=b"k" * 32) != ids.new_ids(times, seed=b"j" * 32)
    with pytest.raises(ValueError):
        ids.new_ids([-1])


def test_chunks_keep_order_and_stay_under_the_limit():
    entries = [{"id": str(i), "message": "x" * (i % 50) * 40} for i in range(500)]
    groups = rules.chunks(entries, max_bytes=20_000)
    assert [e for g in groups for e in g] == entries
    assert len(groups) > 1
    for g in groups:
        assert sum(len(json.dumps(e, separators=(",", ":"))) + 1 for e in g) <= 20_000
    big = {"id": "big", "message": "y" * 30_000}
    assert rules.chunks([entries[0], big, entries[1]], max_bytes=20_000) == [[entries[0]], [big], [entries[1]]]
    assert rules.chunks([]) == []
