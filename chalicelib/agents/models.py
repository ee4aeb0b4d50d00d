from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator

from chalicelib.core.models import ApiModel, PageModel, ShowsNulls

# Pool names appear inside keys ("...#POOL#{pool}"), so they are restricted to a safe alphabet.
POOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
MAX_POOLS = 20


class RegisterAgentRequest(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    pools: list[str] = Field(default_factory=list, max_length=MAX_POOLS)
    tags: Optional[Union[dict[str, str], list[str]]] = None
    metadata: Optional[dict[str, Any]] = None

    @field_validator("pools")
    @classmethod
    def _pools(cls, pools: list[str]) -> list[str]:
        import re

        for pool in pools:
            if not re.match(POOL_PATTERN, pool):
                raise ValueError(f"pool {pool!r} must match {POOL_PATTERN}")
        return list(dict.fromkeys(pools))  # de-duplicated, order kept


# The entity: the store maps it to and from its item, the routes answer with it.
class AgentResponse(ShowsNulls):
    """An agent (updatedAt and lastSeenAt are null until set)."""

    shown_null = ("updatedAt", "lastSeenAt")

    agent_id: str
    name: str
    pools: list[str]
    status: Literal["active", "inactive"]
    tags: Optional[Union[dict[str, str], list[str]]] = None
    metadata: Optional[dict[str, Any]] = None
    created_at: str
    updated_at: Optional[str] = None
    last_seen_at: Optional[str] = None
    # Not in the API: the last heartbeat (epoch ms), for the jobs' lease checks.
    heartbeat_ms: Optional[int] = Field(default=None, exclude=True)

    @property
    def active(self) -> bool:
        return self.status == "active"


Agent = AgentResponse  # the entity's name in the services; the schema keeps its published name


class AgentCreated(AgentResponse):
    api_key: Optional[str] = Field(default=None, description="shown once: absent from an idempotent replay")


class AgentList(PageModel):
    items: list[AgentResponse]


class AgentListQuery(ApiModel):
    pool: Optional[str] = Field(default=None, pattern=POOL_PATTERN)
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None
