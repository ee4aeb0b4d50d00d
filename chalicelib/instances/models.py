from __future__ import annotations

from typing import Any, Optional

from pydantic import Field, field_validator

from chalicelib.core.models import ApiModel, PageModel, ResponseModel, bounded_json

MAX_METADATA_BYTES = 16 * 1024


def json_object(value: dict[str, Any] | None, limit: int = MAX_METADATA_BYTES) -> dict[str, Any] | None:
    """Free-form JSON that we store as text: finite numbers only (JSON has no NaN), bounded size."""
    return None if value is None else bounded_json(value, limit)


class CreateInstanceRequest(ApiModel):
    agent_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    game_type: Optional[str] = Field(default=None, min_length=1, max_length=64)
    metadata: Optional[dict[str, Any]] = None

    @field_validator("metadata")
    @classmethod
    def _metadata_is_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return json_object(value)


# The entity: the store maps it to and from its item, the routes answer with it.
class Instance(ResponseModel):
    """A game-server instance, owned by one agent."""

    instance_id: str
    agent_id: str
    name: str
    game_type: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None
    created_at: str


class InstanceList(PageModel):
    items: list[Instance]


class InstanceListQuery(ApiModel):
    agent_id: Optional[str] = Field(default=None, min_length=1, max_length=64)
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None
