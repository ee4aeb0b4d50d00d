"""JSON in, as strict as JSON out must be: what a request body may hold.

`json.loads` accepts more than RFC 8259 and DynamoDB can take, and every
excess became a 500 or an unreadable response later (`Infinity` in a list):
- `NaN`, `Infinity` (constants) and numbers that overflow a double (`1e400`
  parses to inf): not JSON numbers a strict parser reads back;
- numbers DynamoDB cannot store: more than 38 significant digits, or a
  magnitude of 1E126 or more;
- strings (values or keys) with a lone surrogate (`"\\ud800"`): not
  encodable as UTF-8, so not storable and not printable.
`loads` raises BadJson naming the field (a dotted path into the body).
"""
from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any

# DynamoDB numbers: up to 38 significant digits, magnitude below 1E+126.
MAX_DIGITS = 38
MAX_MAGNITUDE = Decimal("1E126")
MAX_INTEGER_DIGITS = 126  # an integer below 1E126 has at most 126 digits (JSON has no leading zeros)


class BadJson(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Bad:
    """A number that parsed but must not pass; found again by the walk, which knows its path."""

    def __init__(self, text: str, why: str):
        self.text, self.why = text, why


def _significant_digits(text: str) -> int:
    mantissa = text.lower().split("e")[0].lstrip("-+").replace(".", "")
    return len(mantissa.strip("0")) or 1


def _parse_int(text: str) -> Any:
    # By its length, before int(): 10**400 has one significant digit, and it is its
    # magnitude that neither DynamoDB nor a double (float(10**400) overflows) can hold.
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        return _Bad(text, "is too large to be stored (at most 1E126)")
    if _significant_digits(text) > MAX_DIGITS:
        return _Bad(text, f"has more than {MAX_DIGITS} significant digits (more than can be stored)")
    return int(text)


def _parse_float(text: str) -> Any:
    value = float(text)
    if not math.isfinite(value):
        return _Bad(text, "is not a finite number")
    try:
        exact = Decimal(text)
    except InvalidOperation:  # cannot happen for what the JSON scanner passes; be strict anyway
        return _Bad(text, "is not a number")
    if abs(exact) >= MAX_MAGNITUDE:
        return _Bad(text, "is too large to be stored (at most 1E126)")
    if _significant_digits(text) > MAX_DIGITS:
        return _Bad(text, f"has more than {MAX_DIGITS} significant digits (more than can be stored)")
    return value


def _reject_constant(name: str) -> Any:
    return _Bad(name, f"{name} is not JSON")


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def check_text(field: str, text: str) -> None:
    """Raise BadJson when `text` holds a lone surrogate (for path and query parameters too)."""
    if _has_lone_surrogate(text):
        raise BadJson(field, "contains a lone surrogate (not valid Unicode)")


def _walk(value: Any, path: str) -> None:
    if isinstance(value, _Bad):
        raise BadJson(path or "body", value.why)
    if isinstance(value, str):
        check_text(path or "body", value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if _has_lone_surrogate(key):
                raise BadJson(path or "body", "has a key with a lone surrogate (not valid Unicode)")
            _walk(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}.{index}" if path else str(index))


def loads(raw: bytes | str) -> Any:
    """Parse a request body; ValueError (not JSON) or BadJson (JSON we refuse, naming the field)."""
    data = json.loads(raw, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float)
    _walk(data, "")
    return data
