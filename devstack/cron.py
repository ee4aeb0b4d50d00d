"""EventBridge schedule expressions: parse rate() and cron(), compute the next fire time.

moto stores schedule rules but never fires them, so the local stack runs
schedules itself. The grammar follows the EventBridge rules documentation:

* ``rate(N unit)``: unit is minute/hour/day, singular when N is 1 and plural
  otherwise (EventBridge rejects ``rate(1 minutes)``; so do we, so that a
  mistake shows up locally rather than at deploy time).
* ``cron(minutes hours day-of-month month day-of-week year)``: six fields, UTC.
  Each field takes ``*``, numbers, lists (``,``), ranges (``-``) and steps
  (``/``); months take JAN-DEC and days of week SUN-SAT (1 = SUN, 7 = SAT).
  Exactly one of day-of-month and day-of-week must be ``?``. The ``L``, ``W``
  and ``#`` wildcards are rejected with ScheduleError: the local scheduler
  does not implement them.

All times are timezone-aware UTC datetimes; a naive datetime is taken as UTC.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

MONTH_NAMES = {name: number for number, name in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
DAY_NAMES = {name: number for number, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}

# EventBridge accepts years 1970-2199; a schedule that cannot fire by then never fires.
MIN_YEAR, MAX_YEAR = 1970, 2199

_RATE = re.compile(r"rate\(\s*(\d+)\s+([a-z]+)\s*\)", re.IGNORECASE)
_CRON = re.compile(r"cron\((.*)\)", re.IGNORECASE | re.DOTALL)
_RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


class ScheduleError(ValueError):
    """An expression EventBridge would reject, or one the local scheduler cannot run."""


@dataclass(frozen=True)
class Rate:
    """rate(N unit): fires every `period`, counted from the previous fire."""

    expression: str
    period: timedelta

    def next_after(self, after: datetime) -> datetime:
        return _utc(after) + self.period


@dataclass(frozen=True)
class Cron:
    """cron(...): the sets of values each field allows. `days_of_month` or `days_of_week` is None for `?`."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    days_of_week: frozenset[int] | None
    years: frozenset[int]

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after `after` (schedules have minute resolution)."""
        start = _utc(after).replace(second=0, microsecond=0) + timedelta(minutes=1)
        hours, minutes = sorted(self.hours), sorted(self.minutes)
        day = start.date()
        while day.year <= MAX_YEAR:
            # Skip whole years and months at once so that sparse schedules stay cheap.
            if day.year not in self.years:
                day = date(day.year + 1, 1, 1)
                continue
            if day.month not in self.months:
                day = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
                continue
            if self._day_matches(day):
                for hour in hours:
                    for minute in minutes:
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise ScheduleError(f"{self.expression} never fires after {after.isoformat()}")

    def _day_matches(self, day: date) -> bool:
        if self.days_of_month is not None:
            return day.day in self.days_of_month
        # Python: Monday = 0 ... Sunday = 6; EventBridge: Sunday = 1 ... Saturday = 7.
        assert self.days_of_week is not None
        return (day.weekday() + 1) % 7 + 1 in self.days_of_week


Schedule = Rate | Cron


def parse(expression: str) -> Schedule:
    """Parse an EventBridge schedule expression; ScheduleError says what is wrong."""
    text = expression.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        return _parse_rate(text, int(rate.group(1)), rate.group(2).lower())
    cron = _CRON.fullmatch(text)
    if cron:
        return _parse_cron(text, cron.group(1).split())
    raise ScheduleError(f"not a rate() or cron() expression: {expression!r}")


def _parse_rate(text: str, value: int, unit: str) -> Rate:
    if value < 1:
        raise ScheduleError(f"{text}: the rate must be a positive whole number")
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in _RATE_UNITS:
        raise ScheduleError(f"{text}: unit must be minute(s), hour(s) or day(s)")
    expected = singular if value == 1 else singular + "s"
    if unit != expected:
        raise ScheduleError(f"{text}: EventBridge requires '{value} {expected}'")
    return Rate(text, value * _RATE_UNITS[singular])


def _parse_cron(text: str, fields: list[str]) -> Cron:
    if len(fields) != 6:
        raise ScheduleError(
            f"{text}: cron() needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}")
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleError(f"{text}: exactly one of day-of-month and day-of-week must be '?'")
    return Cron(
        expression=text,
        minutes=_parse_field(text, "minutes", minutes, 0, 59),
        hours=_parse_field(text, "hours", hours, 0, 23),
        days_of_month=None if day_of_month == "?" else _parse_field(text, "day-of-month", day_of_month, 1, 31),
        months=_parse_field(text, "month", month, 1, 12, MONTH_NAMES),
        days_of_week=None if day_of_week == "?" else _parse_field(text, "day-of-week", day_of_week, 1, 7, DAY_NAMES),
        years=_parse_field(text, "year", year, MIN_YEAR, MAX_YEAR),
    )


def _parse_field(text: str, field: str, spec: str, low: int, high: int,
                 names: dict[str, int] | None = None) -> frozenset[int]:
    """One cron field (`*`, `5`, `1,3`, `MON-FRI`, `*/15`, `10-50/5`, `0/30`) as the set of values it allows."""
    values: set[int] = set()
    for part in spec.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{text}: {field}: bad step in {part!r}")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first = _value(text, field, first_text, low, high, names)
            last = _value(text, field, last_text, low, high, names)
            if first > last:
                raise ScheduleError(f"{text}: {field}: range {base!r} runs backwards")
        else:
            first = _value(text, field, base, low, high, names)
            # "5/15" means from 5 every 15 up to the end of the field; plain "5" is just 5.
            last = high if slash else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _value(text: str, field: str, token: str, low: int, high: int, names: dict[str, int] | None) -> int:
    upper = token.upper()
    if names and upper in names:
        return names[upper]
    if token.isdigit():
        number = int(token)
        if not low <= number <= high:
            raise ScheduleError(f"{text}: {field}: {number} is outside {low}-{high}")
        return number
    if token == "?":
        raise ScheduleError(f"{text}: {field}: '?' is only allowed alone in day-of-month or day-of-week")
    if any(wildcard in upper for wildcard in "LW#"):
        raise ScheduleError(f"{text}: {field}: the L, W and # wildcards are not supported by the local scheduler")
    raise ScheduleError(f"{text}: {field}: cannot read {token!r}")


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
