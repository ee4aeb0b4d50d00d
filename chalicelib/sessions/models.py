"""Sessions over HTTP: requests (camelCase, snake_case accepted) and responses."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, get_args

from pydantic import AfterValidator, Field

from chalicelib.core.models import ApiModel, PageModel, ResponseModel, bounded_json
from chalicelib.sessions.rules import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, Status

MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_KEYS = 100
MAX_KEY_LENGTH = 128
PAGE_MAX = 10_000  # page k reads k x pageSize keys: past this, follow nextToken


def metadata_object(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON (no NaN), at most 16 KiB and 100 keys a request, keys 1-128 characters."""
    if value is None:
        return None
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"at most {MAX_METADATA_KEYS} keys a request")
    for key in value:
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise ValueError(f"keys are 1 to {MAX_KEY_LENGTH} characters")
    bounded_json(value, MAX_METADATA_BYTES)
    return value


# A request's metadata: checked by metadata_object wherever a request carries it.
Metadata = Annotated[Optional[dict[str, Any]], AfterValidator(metadata_object)]


class CreateSessionRequest(ApiModel):
    agent_role: str = Field(min_length=1, max_length=128)
    task_id: Optional[str] = Field(default=None, min_length=1, max_length=64)
    metadata: Metadata = None


class UpdateSessionRequest(ApiModel):
    """Every field optional; metadata is merged key by key (a null value removes that key)."""

    status: Optional[Status] = None
    task_id: Optional[str] = Field(default=None, min_length=1, max_length=64)
    metadata: Metadata = None


# Query enums as Literal: the OpenAPI document inlines query parameter schemas (no $defs there).
StatusName = Literal["pending", "active", "completed", "failed", "expired"]
assert set(get_args(StatusName)) == {s.value for s in Status}  # spelled out for the type checker; rules.Status is the truth


class SessionListQuery(ApiModel):
    status: Optional[StatusName] = None
    page: int = Field(default=1, ge=1, le=PAGE_MAX)
    page_size: int = Field(default=PAGE_SIZE_DEFAULT, ge=1, le=PAGE_SIZE_MAX)
    next_token: Optional[str] = None


class ActiveListQuery(ApiModel):
    page: int = Field(default=1, ge=1, le=PAGE_MAX)
    page_size: int = Field(default=PAGE_SIZE_DEFAULT, ge=1, le=PAGE_SIZE_MAX)
    next_token: Optional[str] = None


# The entity: the store maps it to and from its item, the routes answer with it.
class Session(ResponseModel):
    """A session."""

    session_id: str
    agent_role: str
    status: Status
    task_id: Optional[str] = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    updated_at: str
    # Not in the API: the agent whose key created it (its events reach that agent).
    owner_agent_id: Optional[str] = Field(default=None, exclude=True)


class SessionList(PageModel):
    """The contract's page-based list (`sessions`, `total`, `page`, `pageSize`), plus nextToken for deep paging."""

    sessions: list[Session]
    total: int
    page: int
    page_size: int
