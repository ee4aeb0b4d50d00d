"""People: invited into an organization through the Cognito user pool, listed, disabled.

Order of effects. Inviting: the pool first (group made if missing, user created, put in the
group), then the person's item with its audit event in one commit. A commit that fails (or a
process that stops between the two) leaves a pool user with no item, who can sign in but is
refused on every call ("unknown person"); the admin's retry of the invite adopts that pool user
(`_adopt`: read from the pool, put in the group, the item written as a fresh invite writes it),
never one that has an item already or belongs to another organization's group (409 then;
docs/SECURITY.md, "Identities"). Disabling: the
item first (every REST call of the person is 401 from that commit on, whatever token they hold),
then the pool (AdminDisableUser: no new sign-in; AdminUserGlobalSignOut: no refresh), then their
open sockets are closed. A repeated DELETE does the last two again (idempotent, 204).
"""
from __future__ import annotations

import logging
import secrets
import string

from chalicelib.core.auth import Scope, grants_of, group_name, person_actor
from chalicelib.core.context import Ctx
from chalicelib.core.errors import Conflict, NotFound, Unavailable, ValidationError
from chalicelib.core.paging import next_token, start_key
from chalicelib.core.tx import TxFailed
from chalicelib.fanout import fanout
from chalicelib.users import adapters, models, rules, store
from chalicelib.users.models import User, UserList

log = logging.getLogger(__name__)


def _require_pool() -> None:
    if not adapters.configured():
        raise Unavailable("people are not configured here: COGNITO_USER_POOL_ID is unset (docs/DEPLOY.md)")


def create_user(ctx: Ctx, command: models.CreateUserRequest, password: str | None = None,
                root: bool | None = None) -> User:
    """Invite a person (admin). `password`: a permanent one, set at once, and `root`: the local stack's first person."""
    _require_pool()
    email = rules.normalized_email(command.email)
    scope = Scope(command.scope)
    group = group_name(ctx.org_id, scope)
    adopted = False
    try:
        username, sub = adapters.invite(email, group, rules.group_description(ctx.org_id, scope.value))
    except adapters.UserExists:
        username, sub = _adopt(ctx, email, scope)
        adopted = True
    except adapters.InvalidEmail:
        raise ValidationError.field("email", "is not an email address the user pool accepts") from None
    if password is not None:
        adapters.set_password(username, password)
    user = User(user_id=sub, email=email, scope=scope.value, status="active", created_at=ctx.iso())
    if root is None:  # a person of the root organization is root as its keys are (POST /orgs)
        root = ctx.principal.root if ctx.principal is not None else False
    tx = ctx.tx()
    tx.put("user", store.user_put(ctx.org_id, user, username, root))
    tx.audit("user", sub, "invited", {"email": email, "scope": scope.value, "group": group,
                                      **({"adoptedPoolUser": True} if adopted else {})})
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name == "user":
            raise Conflict(f"person {sub} exists already") from None
        raise
    return user


def _taken(email: str) -> Conflict:
    return Conflict(f"a person with the email {email} exists already", [{"field": "email", "message": "taken"}])


def _adopt(ctx: Ctx, email: str, scope: Scope) -> tuple[str, str]:
    """The pool has a user with this email: adopt it when an earlier invite of this organization stopped
    after the pool and before the app's item (username, sub); else 409, the email is taken.

    Adopted only when the app has no item for that person (in any organization), the pool user is
    enabled, its email is this one, and it is in no group of another organization: a person of
    another tenant is never pulled into this one. Its groups of this organization end as a fresh
    invite leaves them: the asked scope's group only."""
    found = adapters.pool_user(email)
    if found is None or not found.enabled or (found.email or "").lower() != email:
        raise _taken(email)
    if store.get(found.sub) is not None:
        raise _taken(email)  # the person exists in the app (this organization or another)
    grants = grants_of(found.groups)
    if any(org != ctx.org_id for org, _ in grants):
        log.warning("invite of %s: the pool user is in another organization's group; not adopted", found.sub)
        raise _taken(email)
    group = group_name(ctx.org_id, scope)
    leave = tuple(g for g in found.groups if g != group and grants_of([g]))
    adapters.join(found.username, group, rules.group_description(ctx.org_id, scope.value), leave)
    log.info("invite of %s: adopted the pool user an earlier invite left without an item", found.sub)
    return found.username, found.sub


def list_users(ctx: Ctx, query: models.ListQuery) -> UserList:
    scope = f"users:{ctx.org_id}"
    page = store.list_users(ctx.org_id, query.limit, start_key(query.next_token, scope))
    return UserList(items=page.items, next_token=next_token(page.last_key, scope))


def disable_user(ctx: Ctx, user_id: str) -> None:
    """Disabled at once: REST 401 from the commit on, no sign-in or refresh, open sockets closed."""
    found = store.get(user_id)
    if found is None or found.org_id != ctx.org_id:
        raise NotFound(f"no person {user_id}")
    if found.user.disabled_at is None:
        tx = ctx.tx()
        tx.update("user", store.disable_update(ctx.org_id, user_id, ctx.iso()))
        tx.audit("user", user_id, "disabled", {"email": found.user.email})
        try:
            tx.commit()
        except TxFailed as failed:
            if failed.name != "user":
                raise
            # disabled by a concurrent DELETE: the rest is idempotent
    _require_pool()
    adapters.disable(found.username)
    fanout.close_opened_with(ctx.org_id, key_id=person_actor(user_id))


def _password() -> str:
    """A password every Cognito default policy accepts (upper, lower, digit, symbol; 20 characters)."""
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(16))
    return f"{body}Aa1!"


def seed_first_person(ctx: Ctx, email: str, password: str | None) -> dict[str, str]:
    """The local stack's first person, an admin of the root organization (ctx acts for it).

    Existing already (a restart): nothing is created; a given password is set again, so
    ADMIN_PASSWORD is always the one that works. Returns what the stack prints.
    """
    _require_pool()
    email = rules.normalized_email(email)
    command = models.CreateUserRequest(email=email, scope="admin")
    chosen = password or _password()
    try:
        user = create_user(ctx, command, password=chosen, root=True)
        # A generated password is printed once, like a generated root key; a chosen one is its owner's.
        return {"adminEmail": email, "adminUserId": user.user_id, **({} if password else {"adminPassword": chosen})}
    except Conflict:
        if password:
            adapters.set_password(email, password)  # Cognito takes the email for the username
        return {"adminEmail": email}
