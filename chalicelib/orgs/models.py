from __future__ import annotations

from typing import Literal, Optional

from pydantic import AwareDatetime, Field

from chalicelib.core.models import ApiModel, PageModel, ResponseModel, ShowsNulls


class CreateOrgRequest(ApiModel):
    name: str = Field(min_length=1, max_length=200)


class OrgCreated(ResponseModel):
    org_id: str
    name: str
    admin_key: Optional[str] = Field(default=None, description="shown once: absent from an idempotent replay")
    created_at: str


class CreateKeyRequest(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    scope: Literal["admin", "operator", "agent"]
    agent_id: Optional[str] = Field(default=None, min_length=1, max_length=64)
    expires_at: Optional[AwareDatetime] = None


# A key as the store lists it (core/auth.py mints and reads the key item itself).
class KeyInfo(ShowsNulls):
    """An API key as listed: never its secret; unset fields are null."""

    shown_null = ("agentId", "expiresAt", "revokedAt", "lastUsedAt")

    key_id: str
    name: str
    scope: str
    agent_id: Optional[str] = None
    expires_at: Optional[str] = None
    revoked_at: Optional[str] = None
    created_at: str
    last_used_at: Optional[str] = Field(default=None, description="when the key was last used (precision: one minute)")


class KeyCreated(KeyInfo):
    api_key: Optional[str] = Field(default=None, description="shown once: absent from an idempotent replay")


class KeyList(PageModel):
    items: list[KeyInfo]


class ListQuery(ApiModel):
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None
