"""devstack.cron: EventBridge rate() and cron() parsing and next fire times."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack import cron
from devstack.cron import ScheduleError

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- rate() -------------------------------------------------------------------

@pytest.mark.parametrize("expression, period", [
    ("rate(1 minute)", timedelta(minutes=1)),
    ("rate(5 minutes)", timedelta(minutes=5)),
    ("rate(1 hour)", timedelta(hours=1)),
    ("rate(12 hours)", timedelta(hours=12)),
    ("rate(1 day)", timedelta(days=1)),
    ("rate(7 days)", timedelta(days=7)),
])
def test_rate_fires_one_period_after_the_previous_fire(expression, period):
    schedule = cron.parse(expression)
    assert schedule.expression == expression
    assert schedule.next_after(at("2024-03-10T10:07:31")) == at("2024-03-10T10:07:31") + period


@pytest.mark.parametrize("expression, message", [
    ("rate(1 minutes)", "requires '1 minute'"),
    ("rate(5 minute)", "requires '5 minutes'"),
    ("rate(0 minutes)", "positive"),
    ("rate(2 weeks)", "unit must be"),
    ("rate(x minutes)", "not a rate() or cron()"),
    ("rate(5)", "not a rate() or cron()"),
    ("at(2024-01-01T00:00:00)", "not a rate() or cron()"),
    ("", "not a rate() or cron()"),
])
def test_bad_rate_expressions_are_rejected(expression, message):
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cron.parse(expression)


def test_chalice_rate_and_cron_objects_render_parseable_expressions():
    from chalice import Cron, Rate

    assert cron.parse(Rate(1, unit=Rate.MINUTES).to_string()).period == timedelta(minutes=1)
    assert cron.parse(Rate(3, unit=Rate.HOURS).to_string()).period == timedelta(hours=3)
    daily = cron.parse(Cron(0, 9, "*", "*", "?", "*").to_string())
    assert daily.next_after(at("2024-01-01T12:00")) == at("2024-01-02T09:00")


# --- cron(): next fire times ----------------------------------------------------

@pytest.mark.parametrize("expression, after, expected", [
    # Daily at 09:00; strictly after, minute resolution.
    ("cron(0 9 * * ? *)", "2024-01-01T08:59:59", "2024-01-01T09:00"),
    ("cron(0 9 * * ? *)", "2024-01-01T09:00:00", "2024-01-02T09:00"),
    ("cron(0 9 * * ? *)", "2024-01-01T09:00:30", "2024-01-02T09:00"),
    # Steps, from * and from a start value, and inside a range.
    ("cron(*/15 * * * ? *)", "2024-01-01T10:07", "2024-01-01T10:15"),
    ("cron(*/15 * * * ? *)", "2024-01-01T10:45", "2024-01-01T11:00"),
    ("cron(5/20 * * * ? *)", "2024-01-01T10:46", "2024-01-01T11:05"),
    ("cron(10-50/20 * * * ? *)", "2024-01-01T10:31", "2024-01-01T10:50"),
    ("cron(10-50/20 * * * ? *)", "2024-01-01T10:50", "2024-01-01T11:10"),
    # Lists and ranges in hours.
    ("cron(0 8,12,18 * * ? *)", "2024-01-01T12:00", "2024-01-01T18:00"),
    ("cron(30 22-23 * * ? *)", "2024-01-01T23:30", "2024-01-02T22:30"),
    # Days of week: 1 = SUN ... 7 = SAT; 2024-01-05 is a Friday.
    ("cron(0 9 ? * MON-FRI *)", "2024-01-05T10:00", "2024-01-08T09:00"),
    ("cron(0 9 ? * 2-6 *)", "2024-01-05T10:00", "2024-01-08T09:00"),
    ("cron(0 0 ? * 1 *)", "2024-01-01T00:00", "2024-01-07T00:00"),
    ("cron(0 0 ? * SUN *)", "2024-01-01T00:00", "2024-01-07T00:00"),
    ("cron(0 0 ? * 7 *)", "2024-01-01T00:00", "2024-01-06T00:00"),
    ("cron(0 0 ? * sat,sun *)", "2024-01-06T00:00", "2024-01-07T00:00"),
    ("cron(0 12 ? * WED *)", "2024-01-01T00:00", "2024-01-03T12:00"),
    # Months by name (JUL holds an L, WED above a W: names are not wildcards).
    ("cron(0 0 1 JAN,JUL ? *)", "2024-02-01T00:00", "2024-07-01T00:00"),
    ("cron(0 0 1 jul ? *)", "2024-07-01T00:00", "2025-07-01T00:00"),
    ("cron(0 0 15 3-5 ? *)", "2024-05-15T00:00", "2025-03-15T00:00"),
    # Days that do not exist in every month.
    ("cron(0 0 31 * ? *)", "2024-04-01T00:00", "2024-05-31T00:00"),
    ("cron(0 12 29 2 ? *)", "2024-03-01T00:00", "2028-02-29T12:00"),
    # Year boundary and year field.
    ("cron(59 23 31 12 ? *)", "2024-12-31T23:59", "2025-12-31T23:59"),
    ("cron(0 0 1 1 ? 2030)", "2024-06-01T00:00", "2030-01-01T00:00"),
    ("cron(0 0 1 1 ? 2025-2026)", "2025-01-01T00:00", "2026-01-01T00:00"),
    ("cron(0 0 1 1 ? 2025/2)", "2025-01-01T00:00", "2027-01-01T00:00"),
])
def test_cron_next_fire_time(expression, after, expected):
    assert cron.parse(expression).next_after(at(after)) == at(expected)


def test_cron_answers_in_utc_whatever_the_input_timezone():
    schedule = cron.parse("cron(0 9 * * ? *)")
    paris_winter = timezone(timedelta(hours=1))
    result = schedule.next_after(datetime(2024, 1, 1, 9, 30, tzinfo=paris_winter))  # 08:30 UTC
    assert result == at("2024-01-01T09:00")
    assert result.tzinfo == UTC
    # A naive datetime is UTC.
    assert schedule.next_after(datetime(2024, 1, 1, 8, 30)) == at("2024-01-01T09:00")


def test_a_schedule_that_cannot_fire_again_says_so():
    with pytest.raises(ScheduleError, match="never fires"):
        cron.parse("cron(0 0 1 1 ? 2030)").next_after(at("2030-01-01T00:00"))
    with pytest.raises(ScheduleError, match="never fires"):
        cron.parse("cron(0 0 30 FEB ? *)").next_after(at("2024-01-01T00:00"))


# --- cron(): rejected expressions ---------------------------------------------------

@pytest.mark.parametrize("expression, message", [
    ("cron(0 9 * * ?)", "needs 6 fields"),
    ("cron(0 9 * * ? * *)", "needs 6 fields"),
    ("cron(0 9 * * * *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 9 ? * ? *)", "exactly one of day-of-month and day-of-week"),
    ("cron(60 9 * * ? *)", "minutes: 60 is outside 0-59"),
    ("cron(0 24 * * ? *)", "hours: 24 is outside 0-23"),
    ("cron(0 9 0 * ? *)", "day-of-month: 0 is outside 1-31"),
    ("cron(0 9 32 * ? *)", "day-of-month: 32 is outside 1-31"),
    ("cron(0 9 * 13 ? *)", "month: 13 is outside 1-12"),
    ("cron(0 9 ? * 8 *)", "day-of-week: 8 is outside 1-7"),
    ("cron(0 9 ? * 0 *)", "day-of-week: 0 is outside 1-7"),
    ("cron(0 9 * * ? 1969)", "year: 1969 is outside 1970-2199"),
    ("cron(0 9 L * ? *)", "L, W and # wildcards are not supported"),
    ("cron(0 9 15W * ? *)", "L, W and # wildcards are not supported"),
    ("cron(0 9 LW * ? *)", "L, W and # wildcards are not supported"),
    ("cron(0 9 ? * 6L *)", "L, W and # wildcards are not supported"),
    ("cron(0 9 ? * MON#2 *)", "L, W and # wildcards are not supported"),
    ("cron(0 9 ? * 2#1 *)", "L, W and # wildcards are not supported"),
    ("cron(0 5-1 * * ? *)", "runs backwards"),
    ("cron(*/0 9 * * ? *)", "bad step"),
    ("cron(*/x 9 * * ? *)", "bad step"),
    ("cron(0 9 * FOO ? *)", "cannot read 'FOO'"),
    ("cron(0 9 * * ? MON)", "cannot read 'MON'"),
    ("cron(0 9 * JAN-MON ? *)", "cannot read 'MON'"),
    ("cron(1,,2 9 * * ? *)", "cannot read ''"),
    ("cron(? 9 * * ? *)", "'?' is only allowed alone"),
    ("cron(0 9 *,? * ? *)", "'?' is only allowed alone"),
])
def test_bad_cron_expressions_are_rejected(expression, message):
    with pytest.raises(ScheduleError) as raised:
        cron.parse(expression)
    assert message in str(raised.value)
    assert expression in str(raised.value)  # the error names the expression it is about


# --- cron(): against a brute-force minute scan ---------------------------------------

def _matches(when: datetime, minutes, hours, days_of_week) -> bool:
    # isoweekday: Monday = 1 ... Sunday = 7; EventBridge: Sunday = 1 ... Saturday = 7.
    return when.minute in minutes and when.hour in hours and when.isoweekday() % 7 + 1 in days_of_week


@settings(max_examples=60, deadline=None)
@given(
    minutes=st.sets(st.integers(0, 59), min_size=1, max_size=4),
    hours=st.sets(st.integers(0, 23), min_size=1, max_size=4),
    days_of_week=st.sets(st.integers(1, 7), min_size=1, max_size=3),
    after=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 12, 31)),
)
def test_cron_agrees_with_a_minute_by_minute_scan(minutes, hours, days_of_week, after):
    expression = (f"cron({','.join(map(str, sorted(minutes)))} {','.join(map(str, sorted(hours)))} "
                  f"? * {','.join(map(str, sorted(days_of_week)))} *)")
    expected = after.replace(second=0, microsecond=0, tzinfo=UTC) + timedelta(minutes=1)
    while not _matches(expected, minutes, hours, days_of_week):
        expected += timedelta(minutes=1)
    assert cron.parse(expression).next_after(after) == expected


@given(step=st.integers(1, 59), start=st.integers(0, 59))
def test_minute_steps_are_the_values_from_start_every_step(step, start):
    schedule = cron.parse(f"cron({start}/{step} * * * ? *)")
    assert schedule.minutes == frozenset(range(start, 60, step))
    assert cron.parse(f"cron(*/{step} * * * ? *)").minutes == frozenset(range(0, 60, step))
