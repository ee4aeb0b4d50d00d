"""Load-or-404, the one way a service turns a missing item into the contract's 404.

    job = found(store.get(ctx.org_id, job_id), "job", job_id)   # NotFound("no job <id>") when None

Every read is scoped to the caller's organization, so another org's item is
missing too: 404, never 403 (docs/ARCHITECTURE.md).
"""
from __future__ import annotations

from typing import TypeVar

from chalicelib.core.errors import NotFound

T = TypeVar("T")


def found(value: T | None, kind: str, entity_id: str) -> T:
    """`value`, or NotFound("no <kind> <id>") when it is None."""
    if value is None:
        raise NotFound(f"no {kind} {entity_id}")
    return value
