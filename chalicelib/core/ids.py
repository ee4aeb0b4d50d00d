"""Opaque, time-sortable identifiers (ULID: 48-bit ms time + 80 random bits, Crockford base32)."""
from __future__ import annotations

import os
import time
from typing import Sequence

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int) -> str:
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(at_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if at_ms is None else at_ms
    return _encode((ms << 80) | int.from_bytes(os.urandom(10), "big"))


def new_ids(at_ms: Sequence[int], seed: bytes | None = None) -> list[str]:
    """One ULID per timestamp (ms, 0 <= ms < 2**48) for a batch: ids of equal timestamps
    increase in list order, so sorting by id keeps the batch's order. With `seed` (at least
    10 bytes) the ids are deterministic: a retried request rewrites the same items."""
    if any(not 0 <= ms < 1 << 48 for ms in at_ms):
        raise ValueError("a ULID time is 0 <= ms < 2**48")
    base = int.from_bytes(seed[:10] if seed else os.urandom(10), "big") % ((1 << 80) - len(at_ms))
    return [_encode((ms << 80) | (base + i)) for i, ms in enumerate(at_ms)]


def time_bound(at_ms: int, upper: bool) -> str:
    """The smallest (upper=False) or largest (upper=True) ULID of a millisecond, for range keys."""
    return _encode((at_ms << 80) | (((1 << 80) - 1) if upper else 0))
