"""Cognito user pools' admin API (cognito-idp): the people the app invites, groups, sign-outs.

Thin calls; botocore errors propagate except the few the caller decides on: `UserExists`
(AdminCreateUser on a taken email), `InvalidUsername` (an email the pool refuses), `False`
(a group that exists already) and `None` (AdminGetUser of a user the pool does not have).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import clients


class UserExists(Exception):
    """AdminCreateUser: the pool already has a user with that username (email)."""


class InvalidUsername(Exception):
    """AdminCreateUser: the pool refused the username (an email it does not take)."""


def _idp() -> Any:
    return clients.client("cognito-idp")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def create_group(pool_id: str, name: str, description: str) -> bool:
    """True when the group was created, False when it existed."""
    try:
        _idp().create_group(UserPoolId=pool_id, GroupName=name, Description=description[:2048])
        return True
    except ClientError as error:
        if _code(error) == "GroupExistsException":
            return False
        raise


def create_user(pool_id: str, email: str, temporary_password: str | None = None) -> tuple[str, str]:
    """AdminCreateUser (Cognito emails the invitation); returns (username, sub)."""
    kwargs: dict[str, Any] = {"UserPoolId": pool_id, "Username": email,
                              "UserAttributes": [{"Name": "email", "Value": email},
                                                 {"Name": "email_verified", "Value": "true"}],
                              "DesiredDeliveryMediums": ["EMAIL"]}
    if temporary_password:
        kwargs["TemporaryPassword"] = temporary_password
    try:
        user = _idp().admin_create_user(**kwargs)["User"]
    except ClientError as error:
        if _code(error) == "UsernameExistsException":
            raise UserExists(email) from None
        if _code(error) == "InvalidParameterException":
            raise InvalidUsername(str(error.response.get("Error", {}).get("Message", ""))[:200]) from None
        raise
    attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
    return str(user["Username"]), str(attributes.get("sub") or user["Username"])


def set_password(pool_id: str, username: str, password: str) -> None:
    """A permanent password (the local stack's first person; never used on AWS by the app)."""
    _idp().admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)


@dataclass(frozen=True)
class PoolUser:
    username: str
    sub: str
    email: str | None
    enabled: bool
    groups: tuple[str, ...]


def get_user(pool_id: str, username: str) -> PoolUser | None:
    """AdminGetUser (the email works as the username: the pool's UsernameAttributes) and the user's groups
    (AdminListGroupsForUser, every page); None when the pool has no such user."""
    try:
        user = _idp().admin_get_user(UserPoolId=pool_id, Username=username)
    except ClientError as error:
        if _code(error) == "UserNotFoundException":
            return None
        raise
    attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
    groups: list[str] = []
    token: str | None = None
    while True:
        page = _idp().admin_list_groups_for_user(UserPoolId=pool_id, Username=str(user["Username"]), Limit=60,
                                                 **({"NextToken": token} if token else {}))
        groups += [str(g["GroupName"]) for g in page.get("Groups", [])]
        token = page.get("NextToken")
        if not token:
            break
    return PoolUser(username=str(user["Username"]), sub=str(attributes.get("sub") or user["Username"]),
                    email=attributes.get("email"), enabled=bool(user.get("Enabled", True)), groups=tuple(groups))


def remove_from_group(pool_id: str, username: str, group: str) -> None:
    _idp().admin_remove_user_from_group(UserPoolId=pool_id, Username=username, GroupName=group)


def add_to_group(pool_id: str, username: str, group: str) -> None:
    _idp().admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=group)


def disable(pool_id: str, username: str) -> None:
    """AdminDisableUser: no new sign-in, no refresh."""
    _idp().admin_disable_user(UserPoolId=pool_id, Username=username)


def sign_out_everywhere(pool_id: str, username: str) -> None:
    """AdminUserGlobalSignOut: every refresh token of the user is revoked."""
    _idp().admin_user_global_sign_out(UserPoolId=pool_id, Username=username)
