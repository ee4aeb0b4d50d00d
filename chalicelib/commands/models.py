from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field

from chalicelib.commands import rules
from chalicelib.core.models import ApiModel, PageModel, ResponseModel


class IssueCommandRequest(ApiModel):
    type: str = Field(pattern=rules.TYPE_PATTERN)
    payload: dict[str, Any] = Field(default_factory=dict)
    ttl_seconds: int = Field(default=rules.DEFAULT_TTL_SECONDS, ge=1, le=rules.MAX_TTL_SECONDS)


class AckRequest(ApiModel):
    status: Literal["acked", "failed"]
    result: Any = None


class CommandListQuery(ApiModel):
    status: Optional[Literal["pending", "acked", "failed", "expired"]] = None
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None


class CommandResponse(ResponseModel):
    command_id: str
    agent_id: str
    type: str
    payload: dict[str, Any]
    status: str
    ttl_seconds: int
    created_at: str
    expires_at: str
    acked_at: Optional[str] = None
    result: Any = None


class CommandList(PageModel):
    items: list[CommandResponse]
