"""Settings registry rules: identity, constraint checks by type, value checks, validation. Pure.

Identity: (gameType, fileType, section, key) compared casefolded and trimmed, as the
game reads INI names case-insensitively. The stored entry keeps the names as last written.

Constraints by valueType (anything else is a 400 naming the field):
  int, float  min, max (numbers; integers for int), enum (numbers of that type)
  string      min, max (length, integers >= 0), pattern (a regular expression the whole value matches)
  enum        enum (required, non-empty, distinct strings; values match case-insensitively)
  bool        none (values are True/False in any case)
  and min <= max; a default must itself pass the entry's checks.

Numbers: finite and below 1E126 in magnitude (DynamoDB's number range, which the
request parser enforces on JSON too: core/strict_json.py). Integers stay exact (no
round trip through a double, which would overflow past 1.8E308 or round past 2**53);
an INI value outside that range is an invalid value ("out of range"), never compared.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from chalicelib.settings_registry.ini import Problem, Setting

APPLIES = {"int": {"min", "max", "enum"}, "float": {"min", "max", "enum"}, "string": {"min", "max", "pattern"},
           "enum": {"enum"}, "bool": set()}
INT_TEXT = re.compile(r"[+-]?\d+")
FLOAT_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
INDEXED_KEY = re.compile(r"(.+?)\s*\[\s*\d+\s*\]")
BOOLS = {"true": True, "false": False}


def norm(name: str) -> str:
    return name.strip().casefold()


def identity(entry: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (norm(entry["gameType"]), norm(entry["fileType"]), norm(entry["section"]), norm(entry["key"]))


MAX_MAGNITUDE = 10 ** 126
OUT_OF_RANGE = "is out of range (a number must be below 1E126 in magnitude)"


def is_number(value: Any) -> bool:
    """A finite number in range: never float(value), which overflows for a large int."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < MAX_MAGNITUDE
    return isinstance(value, float) and math.isfinite(value) and abs(value) < float(MAX_MAGNITUDE)  # as JSON reads 1e126


def _is_integral(value: Any) -> bool:
    return is_number(value) and (isinstance(value, int) or value.is_integer())


def check_entry(entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for every problem of one registry entry (camelCase dict)."""
    value_type = entry["valueType"]
    c = dict(entry.get("constraints") or {})
    c = {k: v for k, v in c.items() if v is not None}
    problems: list[tuple[str, str]] = []
    for name in sorted(set(c) - APPLIES[value_type]):
        problems.append((f"constraints.{name}", f"does not apply to {value_type} values"))
    for bound in ("min", "max"):
        if bound not in c or bound not in APPLIES[value_type]:
            continue
        v = c[bound]
        if value_type == "int" and not _is_integral(v):
            problems.append((f"constraints.{bound}", "must be an integer for int values"))
        elif value_type == "float" and not is_number(v):
            problems.append((f"constraints.{bound}", "must be a number"))
        elif value_type == "string" and not (_is_integral(v) and v >= 0):
            problems.append((f"constraints.{bound}", "is a length for string values: an integer >= 0"))
    if is_number(c.get("min")) and is_number(c.get("max")) and c["min"] > c["max"]:
        problems.append(("constraints.min", f"{c['min']} is above constraints.max {c['max']}"))
    if "enum" in APPLIES[value_type]:
        options = c.get("enum")
        if value_type == "enum" and not options:
            problems.append(("constraints.enum", "is required for enum values (the allowed values)"))
        for i, option in enumerate(options or []):
            if value_type == "enum" and not isinstance(option, str):
                problems.append((f"constraints.enum.{i}", "must be a string"))
            elif value_type == "int" and not (_is_integral(option) and not isinstance(option, bool)):
                problems.append((f"constraints.enum.{i}", "must be an integer"))
            elif value_type == "float" and not is_number(option):
                problems.append((f"constraints.enum.{i}", "must be a number"))
        if value_type == "enum" and options and all(isinstance(o, str) for o in options):
            seen: set[str] = set()
            for i, option in enumerate(options):
                if norm(option) in seen:
                    problems.append((f"constraints.enum.{i}", f"{option!r} is listed twice (case-insensitively)"))
                seen.add(norm(option))
    if "pattern" in c and "pattern" in APPLIES[value_type]:
        try:
            re.compile(c["pattern"])
        except (re.error, TypeError) as e:
            problems.append(("constraints.pattern", f"is not a valid regular expression: {e}"))
    if not problems and entry.get("default") is not None:
        why = check_value(entry, entry["default"])
        if why:
            problems.append(("default", why))
    return problems


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _coerce(value_type: str, value: Any) -> Any:
    """The typed value, or ValueError with the message to report."""
    if isinstance(value, str):
        text = value.strip()
        if value_type == "int":
            if not INT_TEXT.fullmatch(text):
                raise ValueError(f"expected an integer, got {_show(value)}")
            # By length first: int() of 5,000 digits is refused (and slow) in Python itself.
            if len(text.lstrip("+-")) > len(str(MAX_MAGNITUDE)) or not is_number(int(text)):
                raise ValueError(f"{_show(text)} {OUT_OF_RANGE}")
            return int(text)
        if value_type == "float":
            if not FLOAT_TEXT.fullmatch(text):
                raise ValueError(f"expected a number, got {_show(value)}")
            if not is_number(typed := float(text)):  # 1e400 reads as inf
                raise ValueError(f"{_show(text)} {OUT_OF_RANGE}")
            return typed
        if value_type == "bool":
            if text.casefold() not in BOOLS:
                raise ValueError(f"expected True or False, got {_show(value)}")
            return BOOLS[text.casefold()]
        return value
    if isinstance(value, bool):
        if value_type == "bool":
            return value
        if value_type in ("string", "enum"):
            return "True" if value else "False"
        raise ValueError(f"expected {'an integer' if value_type == 'int' else 'a number'}, got {value}")
    if is_number(value):
        if value_type == "int":
            if not float(value).is_integer():
                raise ValueError(f"expected an integer, got {value}")
            return int(value)
        if value_type == "float":
            return float(value)
        if value_type == "bool":
            raise ValueError(f"expected True or False, got {value}")
        return str(value)
    if isinstance(value, (int, float)):
        raise ValueError(f"{_show(value)} {OUT_OF_RANGE}")
    if value is None:
        raise ValueError("has no value")
    raise ValueError(f"expected a single {value_type} value, got {type(value).__name__}")


def check_value(entry: Mapping[str, Any], value: Any) -> str | None:
    """Why `value` (INI text or a JSON scalar) is not valid for this entry, or None."""
    value_type = entry["valueType"]
    c = {k: v for k, v in dict(entry.get("constraints") or {}).items() if v is not None}
    try:
        typed = _coerce(value_type, value)
    except ValueError as e:
        return str(e)
    shown = (value.strip() if isinstance(value, str) else str(value))[:80]  # as written
    if value_type in ("int", "float"):
        if "min" in c and typed < c["min"]:
            return f"{shown} is below the minimum {c['min']}"
        if "max" in c and typed > c["max"]:
            return f"{shown} is above the maximum {c['max']}"
        if c.get("enum") and typed not in c["enum"]:
            return f"{shown} is not one of {', '.join(str(o) for o in c['enum'])}"
    elif value_type == "string":
        if "min" in c and len(typed) < c["min"]:
            return f"is {len(typed)} characters long, shorter than {c['min']}"
        if "max" in c and len(typed) > c["max"]:
            return f"is {len(typed)} characters long, longer than {c['max']}"
        if "pattern" in c and re.fullmatch(c["pattern"], typed) is None:
            return f"{_show(typed)} does not match the pattern {c['pattern']}"
    elif value_type == "enum":
        options = c.get("enum") or []
        if norm(typed) not in {norm(str(o)) for o in options}:
            return f"{_show(typed)} is not one of {', '.join(str(o) for o in options)}"
    return None


# --- validation of a whole configuration ------------------------------------

Registry = Mapping[tuple[str, str], Mapping[str, Any]]


def index(entries: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """(section, key), casefolded -> entry, for one (gameType, fileType)."""
    return {(norm(e["section"]), norm(e["key"])): e for e in entries}


def lookup(registry: Registry, section: str, key: str) -> Mapping[str, Any] | None:
    """The entry for a key; `Key[3]` falls back to the entry of `Key` (UE indexed arrays)."""
    found = registry.get((norm(section), norm(key)))
    if found is None and (m := INDEXED_KEY.fullmatch(key.strip())):
        found = registry.get((norm(section), norm(m.group(1))))
    return found


@dataclass
class Report:
    errors: list[dict[str, Any]] = field(default_factory=list)
    unknown_keys: list[dict[str, Any]] = field(default_factory=list)
    checked: int = 0
    _unknown_seen: set[tuple[str, str]] = field(default_factory=set)

    def error(self, section: str, key: str, message: str, line: int | None = None) -> None:
        self.errors.append({"section": section, "key": key, "message": message, "line": line})

    def unknown(self, section: str, key: str, line: int | None = None) -> None:
        ident = (norm(section), norm(key))
        if ident not in self._unknown_seen:
            self._unknown_seen.add(ident)
            self.unknown_keys.append({"section": section, "key": key, "line": line})

    def result(self) -> dict[str, Any]:
        return {"valid": not self.errors, "errors": self.errors, "unknownKeys": self.unknown_keys,
                "checked": self.checked}


def _check(report: Report, registry: Registry, section: str, key: str, value: Any, line: int | None) -> None:
    entry = lookup(registry, section, key)
    if entry is None:
        report.unknown(section, key, line)
        return
    report.checked += 1
    why = check_value(entry, value)
    if why:
        report.error(section, key, f"line {line}: {why}" if line else why, line)


def validate_ini(registry: Registry, settings: Iterable[Setting], problems: Iterable[Problem]) -> dict[str, Any]:
    report = Report()
    items: list[tuple[int, Any]] = [(p.line, p) for p in problems] + [(s.line, s) for s in settings]
    for _, item in sorted(items, key=lambda pair: pair[0]):
        if isinstance(item, Problem):
            report.error(item.section, item.key, item.message, item.line)
        else:
            _check(report, registry, item.section, item.key, item.value, item.line)
    return report.result()


def validate_values(registry: Registry, values: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """{section: {key: value}}; a list value stands for a repeated key (each element is checked)."""
    report = Report()
    for section, keys in values.items():
        for key, value in keys.items():
            for one in (value if isinstance(value, list) else [value]):
                _check(report, registry, section, key, one, None)
    return report.result()
