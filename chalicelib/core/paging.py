"""Paging for every list: one page model, one way to turn a nextToken into a start key and back.

A nextToken is the LastEvaluatedKey, signed with the key pepper and bound to
the organization and the list (`scope`), so a client can neither forge a key
into another partition nor replay a token against another list. A bad token
is 400 naming nextToken. Services build pages (`page(...)`); routes return
them as they are.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Callable, Generic, Sequence, TypeVar

from chalicelib.core.config import settings
from chalicelib.core.errors import ValidationError
from chalicelib.core.models import PageModel

T = TypeVar("T")
S = TypeVar("S")


class Page(PageModel, Generic[T]):
    """`{"items": [...], "nextToken": ...}`; nextToken is null on the last page."""

    items: list[T]


def _sign(scope: str, raw: bytes) -> bytes:
    return hmac.new(settings().api_key_pepper.encode(), scope.encode() + b"|" + raw, hashlib.sha256).digest()[:12]


def encode_token(last_key: dict[str, Any] | None, scope: str) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True, default=str).encode()
    return base64.urlsafe_b64encode(_sign(scope, raw) + raw).decode().rstrip("=")


def decode_token(token: str | None, scope: str) -> dict[str, Any] | None:
    """The key behind `token`, or ValueError when it was not issued for `scope`."""
    if not token:
        return None
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        sig, raw = blob[:12], blob[12:]
        if not hmac.compare_digest(sig, _sign(scope, raw)):
            raise ValueError("bad signature")
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ValueError("not a key")
        return value
    except (ValueError, TypeError) as e:
        raise ValueError("nextToken is not valid for this list") from e


def start_key(next_token: str | None, scope: str) -> dict[str, Any] | None:
    """The ExclusiveStartKey behind a client's nextToken for the list `scope`, or 400 naming nextToken."""
    try:
        return decode_token(next_token, scope)
    except ValueError as e:
        raise ValidationError.field("nextToken", str(e)) from None


def next_token(last_key: dict[str, Any] | None, scope: str) -> str | None:
    return encode_token(last_key, scope)


def page(items: Sequence[S], last_key: dict[str, Any] | None, scope: str,
         view: Callable[[S], T] | None = None) -> "Page[T]":
    """A Page of `items` (through `view`, when given) whose nextToken continues after `last_key`."""
    shown = [view(i) for i in items] if view is not None else list(items)
    return Page[T](items=shown, next_token=next_token(last_key, scope))  # type: ignore[arg-type]
