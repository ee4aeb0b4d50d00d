"""The users domain's other AWS boundary: the Cognito user pool (chalicelib.aws.cognito).

What the domain does to the pool, said in its words: invite a person into a group, disable them
and end their sessions. The pool is COGNITO_USER_POOL_ID (infra/template.yaml; the local stack's
embedded pool, devstack/cognito.py).
"""
from __future__ import annotations

from chalicelib.aws import cognito
from chalicelib.core.config import settings

UserExists = cognito.UserExists
InvalidEmail = cognito.InvalidUsername


def configured() -> bool:
    return bool(settings().cognito_user_pool_id)


def _pool() -> str:
    pool = settings().cognito_user_pool_id
    assert pool, "COGNITO_USER_POOL_ID is not set"
    return pool


def invite(email: str, group: str, group_description: str, temporary_password: str | None = None) -> tuple[str, str]:
    """Create the person in the pool (Cognito emails the invitation) in `group`, made if missing; (username, sub)."""
    cognito.create_group(_pool(), group, group_description)
    username, sub = cognito.create_user(_pool(), email, temporary_password)
    cognito.add_to_group(_pool(), username, group)
    return username, sub


def set_password(username: str, password: str) -> None:
    cognito.set_password(_pool(), username, password)


def disable(username: str) -> None:
    """No new sign-in or refresh from now on (tokens already issued are refused by the app: core/auth.py)."""
    cognito.disable(_pool(), username)
    cognito.sign_out_everywhere(_pool(), username)
