"""Paging for every list: one page model, one way to turn a nextToken into a start key.

A nextToken is the LastEvaluatedKey, signed and bound to the organization and
the list (`scope`), so it cannot be forged into another partition or replayed
against another list. A bad token is 400 naming nextToken.
"""
from __future__ import annotations

from typing import Generic, TypeVar

from chalicelib.aws.dynamo import decode_token, encode_token
from chalicelib.core.errors import ValidationError
from chalicelib.core.models import PageModel

T = TypeVar("T")


class Page(PageModel, Generic[T]):
    """`{"items": [...], "nextToken": ...}`; nextToken is null on the last page."""

    items: list[T]


def start_key(next_token: str | None, scope: str) -> dict | None:
    """The ExclusiveStartKey behind a client's nextToken for the list `scope`, or 400 naming nextToken."""
    try:
        return decode_token(next_token, scope)
    except ValueError as e:
        raise ValidationError.field("nextToken", str(e)) from None


def next_token(last_key: dict | None, scope: str) -> str | None:
    return encode_token(last_key, scope)
