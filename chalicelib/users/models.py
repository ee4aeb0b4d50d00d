"""People of an organization (signed in through the Cognito user pool; docs/SECURITY.md, "Identities")."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from chalicelib.core.models import ApiModel, PageModel, ShowsNulls

# An address as RFC 5321 bounds it; Cognito checks its form again.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^[^@\s\x00-\x1f]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$"


class CreateUserRequest(ApiModel):
    email: str = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)
    # People act as operators or admins; the agent scope is bound to one agent (an agent key's).
    scope: Literal["admin", "operator"]


class User(ShowsNulls):
    """A person invited into the organization: `userId` is their Cognito `sub`, the token's subject."""

    shown_null = ("disabledAt",)

    user_id: str
    email: str
    scope: str
    status: Literal["active", "disabled"]
    created_at: str
    disabled_at: Optional[str] = None


class UserList(PageModel):
    items: list[User]


class ListQuery(ApiModel):
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None
