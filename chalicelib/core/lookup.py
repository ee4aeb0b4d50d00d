"""Load-or-404, the one way a service turns "no such item" into the contract's 404."""
from __future__ import annotations

import re
from typing import TypeVar

from chalicelib.core.errors import NotFound

T = TypeVar("T")
ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")  # every id this service mints


def found(value: T | None, kind: str, ident: str) -> T:
    """`value`, or NotFound("no {kind} {ident}") when it is None (the id quoted at most 64 characters)."""
    if value is None:
        raise NotFound(f"no {kind} {ident[:64]}")
    return value


def minted(kind: str, ident: str) -> str:
    """`ident` when it is a ULID, as every id we mint is; else 404 without a read (nothing can be there)."""
    if not ULID.fullmatch(ident):
        raise NotFound(f"no {kind} {ident[:64]}")
    return ident
