"""People's items.

  PK USER#{sub}, SK USER                     - the person (core/auth.py reads it on every call they make)
  GSI1PK ORG#{orgId}#USERS, GSI1SK {sub}     - an org's people, for GET /users
The item also holds `username` (Cognito's, for the admin calls) and `disabledAt` once disabled.
People are not deleted: a disabled person's item is what keeps their still-valid tokens out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.auth import person_pk
from chalicelib.core.config import settings
from chalicelib.users import rules
from chalicelib.users.models import User


def _table() -> str:
    return settings().main_table


def to_item(org_id: str, user: User, username: str, root: bool) -> dict[str, Any]:
    return {**person_pk(user.user_id), "type": "user", "userId": user.user_id, "orgId": org_id,
            "email": user.email, "scope": user.scope, "username": username, "root": root,
            "createdAt": user.created_at, "GSI1PK": f"ORG#{org_id}#USERS", "GSI1SK": user.user_id}


def from_item(item: dict[str, Any]) -> User:
    return User(user_id=item["userId"], email=item["email"], scope=item["scope"],
                status=rules.status_of(item.get("disabledAt")),  # type: ignore[arg-type]  # one of the two literals
                created_at=item["createdAt"], disabled_at=item.get("disabledAt"))


def user_put(org_id: str, user: User, username: str, root: bool) -> dynamo.Put:
    return dynamo.Put(_table(), to_item(org_id, user, username, root), condition="attribute_not_exists(PK)")


def disable_update(org_id: str, user_id: str, at: str) -> dynamo.Update:
    # The org condition makes another org's person indistinguishable from a missing one.
    return dynamo.Update(_table(), person_pk(user_id), set={"disabledAt": at},
                         condition="attribute_exists(PK) AND orgId = :org AND attribute_not_exists(disabledAt)",
                         values={":org": org_id})


@dataclass(frozen=True)
class Found:
    org_id: str
    username: str
    user: User


def get(user_id: str) -> Found | None:
    item = dynamo.get(_table(), person_pk(user_id), consistent=True)
    return Found(item["orgId"], item["username"], from_item(item)) if item and item.get("type") == "user" else None


@dataclass(frozen=True)
class UserPage:
    items: list[User]
    last_key: dict[str, Any] | None


def list_users(org_id: str, limit: int, start_key: dict[str, Any] | None) -> UserPage:
    page = dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#USERS"}, index="GSI1",
                        limit=limit, start_key=start_key)
    return UserPage([from_item(i) for i in page.items], page.last_key)
