"""The users domain's other AWS boundary: the Cognito user pool (chalicelib.aws.cognito).

What the domain does to the pool, said in its words: invite a person into a group, read a pool user
(to adopt one an interrupted invite left behind), disable them and end their sessions. The pool is
COGNITO_USER_POOL_ID (infra/template.yaml; the local stack's embedded pool, devstack/cognito.py).
"""
from __future__ import annotations

from chalicelib.aws import cognito
from chalicelib.core.config import settings

UserExists = cognito.UserExists
InvalidEmail = cognito.InvalidUsername
PoolUser = cognito.PoolUser


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


def pool_user(email: str) -> PoolUser | None:
    """The pool's user with this email (username, sub, email, enabled, groups), or None."""
    return cognito.get_user(_pool(), email)


def join(username: str, group: str, group_description: str, leave: tuple[str, ...] = ()) -> None:
    """Put an existing pool user in `group` (made if missing), as `invite` does, and out of `leave`."""
    cognito.create_group(_pool(), group, group_description)
    cognito.add_to_group(_pool(), username, group)
    for other in leave:
        cognito.remove_from_group(_pool(), username, other)


def set_password(username: str, password: str) -> None:
    cognito.set_password(_pool(), username, password)


def disable(username: str) -> None:
    """No new sign-in or refresh from now on (tokens already issued are refused by the app: core/auth.py)."""
    cognito.disable(_pool(), username)
    cognito.sign_out_everywhere(_pool(), username)
