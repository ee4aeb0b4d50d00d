from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field

from chalicelib.commands import rules
from chalicelib.core.models import ApiModel, PageModel, ResponseModel


Priority = Literal["high", "normal", "low"]


class IssueCommandRequest(ApiModel):
    type: str = Field(pattern=rules.TYPE_PATTERN)
    payload: dict[str, Any] = Field(default_factory=dict)
    ttl_seconds: int = Field(default=rules.DEFAULT_TTL_SECONDS, ge=1, le=rules.MAX_TTL_SECONDS)
    priority: Priority = Field(default="normal", description="pending commands are listed and delivered "
                                                             "highest first, oldest first within a priority")


class AckRequest(ApiModel):
    status: Literal["acked", "failed"]
    result: Any = None


class CommandListQuery(ApiModel):
    status: Optional[Literal["pending", "acked", "failed", "expired"]] = None
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None


class CommandResponse(ResponseModel):
    """A command to an agent: the one entity of the CMD item (commands/store.py maps it) and the response.

    `status` is the stored one; `as_of(now)` is the command as a reader sees it then (pending past
    expiresAt is expired before the sweep writes it so). The org is never shown.
    """

    org_id: str = Field(default="", exclude=True)  # not in the JSON: a response read back has none
    command_id: str
    agent_id: str
    type: str
    payload: dict[str, Any]
    status: str
    priority: Priority = "normal"
    ttl_seconds: int
    created_at: str
    expires_at: str
    acked_at: Optional[str] = None
    result: Any = None

    def as_of(self, now_iso: str) -> "CommandResponse":
        """The command with its status at `now_iso` (rules.effective_status)."""
        status = rules.effective_status(self.status, self.expires_at, now_iso)
        return self if status == self.status else self.model_copy(update={"status": status})

    def event_data(self) -> dict[str, Any]:
        """The command as its events carry it: the response's JSON."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


Command = CommandResponse  # the entity is the response


class CommandList(PageModel):
    items: list[CommandResponse]
