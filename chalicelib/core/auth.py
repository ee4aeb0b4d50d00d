"""Who is calling: API keys, people (OpenID Connect tokens), principals and scopes.

`identify(Presented)` is the one dispatch point: it chooses the identity a request presents and
returns its Principal, or raises KeyDenied (401, or 403 with `status=403`). Today:

* a JWT (when OIDC is configured, core/tokens.py): a person; see `_person` below;
* anything else in `Authorization: Bearer`: an API key (`_api_key`).

A third identity plugs in at the top of `identify`: a client certificate (API Gateway's
`requestContext.identity.clientCert`, or the local stack's TLS port handing over the same
structure) is a field of `Presented` and is tried before the bearer token, so a gateway's
mutual-TLS call never falls through to the key path.

API keys.

A key looks like ``cpk.<keyId>.<secret>``; the keyId finds its item with one
GetItem and the item holds only HMAC-SHA256(pepper, key), never the key. A
key in another format (ADMIN_API_KEY may be any string) is found by an id
derived from its keyed hash. No cache: a revoked key fails on its next
request.

Last use: a key's item carries `lastUsedAt`, written at most once per key per minute (a
conditional UpdateItem after the GetItem, only when the stored time is a minute old), so a
busy key costs no extra write per request (GET /keys shows it; precision one minute).

People: a verified token's subject finds the person's item with one GetItem (PK USER#{sub}), the
same cost as an API key's: it is how a person disabled by DELETE /users is refused on the very
next call (Cognito's own access tokens stay valid until they expire), and it names the
organization the person was invited into. Organization and scope come from the token's groups
`org:<orgId>:<scope>` (set only by POST /users through Cognito's admin API): no group is 403, a
group naming any other organization than the person's is 403, both audited in the person's trail.

Equal time: an unknown keyId is checked against a dummy hash, so a known
keyId with a wrong secret and an unknown keyId do the same work (one GetItem,
one HMAC, one constant-time compare) and cannot be told apart by timing.
"""
from __future__ import annotations

from typing import Any

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import logging

from chalicelib.aws import dynamo
from chalicelib.core import clock, ids, tokens
from chalicelib.core.config import settings
from chalicelib.core.errors import Forbidden, Unauthorized


class Scope(str, enum.Enum):
    AGENT = "agent"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"agent": 0, "operator": 1, "admin": 2}[self.value]

    def allows(self, required: "Scope") -> bool:
        return self.rank >= required.rank


log = logging.getLogger(__name__)


class Kind(str, enum.Enum):
    """Which identity a principal presented."""

    KEY = "key"
    PERSON = "person"


@dataclass(frozen=True)
class Principal:
    org_id: str
    # The credential's id: a keyId, or `user:<sub>` for a person (idempotency keys, sockets and
    # revocation are scoped to it).
    key_id: str
    scope: Scope
    agent_id: str | None = None
    root: bool = False  # the key (or person) belongs to the root organization
    kind: Kind = Kind.KEY
    email: str | None = None  # a person's, for the audit trail
    expires_at: float | None = None  # epoch seconds the credential stops working (a token's exp, a key's expiresAt)

    @property
    def actor(self) -> str:
        """Who acted, as audit events record it: the agent for an agent key, `user:<sub>` for a person, else the key."""
        if self.kind is Kind.PERSON:
            return self.key_id
        return f"agent:{self.agent_id}" if self.agent_id else f"key:{self.key_id}"

    def require(self, scope: Scope) -> None:
        if not self.scope.allows(scope):
            raise Forbidden(f"this route needs the {scope.value} scope")

    def require_agent(self, agent_id: str) -> None:
        """An agent key may only act as its own agent; operators and admins may act for any."""
        if self.scope is Scope.AGENT and self.agent_id != agent_id:
            raise Forbidden("an agent key may only act as its own agent")


# What an unknown keyId is compared against: the same length as a real hash, matching none.
DUMMY_HASH = "0" * 64
# Longer than any key we mint or accept as ADMIN_API_KEY: refused before any work.
MAX_KEY_LENGTH = 512


def _hash(api_key: str) -> str:
    return hmac.new(settings().api_key_pepper.encode(), api_key.encode(), hashlib.sha256).hexdigest()


def key_id_of(api_key: str) -> str:
    parts = api_key.split(".")
    if len(parts) == 3 and parts[0] == "cpk" and len(parts[1]) == 26:
        return parts[1]
    return "x" + hmac.new(settings().api_key_pepper.encode(), b"id:" + api_key.encode(), hashlib.sha256).hexdigest()[:25]


def key_pk(key_id: str) -> dict[str, Any]:
    return {"PK": f"KEY#{key_id}", "SK": "KEY"}


def new_key(org_id: str, scope: Scope, name: str, agent_id: str | None = None, expires_at: str | None = None,
            root: bool = False, api_key: str | None = None) -> tuple[str, dict[str, Any]]:
    """A fresh key and the item that stores it (not written here)."""
    if api_key is None:
        api_key = f"cpk.{ids.new_id()}.{secrets.token_urlsafe(32)}"
    key_id = key_id_of(api_key)
    item = {
        **key_pk(key_id), "type": "key", "keyId": key_id, "orgId": org_id, "name": name,
        "scope": scope.value, "agentId": agent_id, "expiresAt": expires_at, "root": root,
        "hash": _hash(api_key), "createdAt": clock.iso(),
        "GSI1PK": f"ORG#{org_id}#KEYS", "GSI1SK": key_id,
    }
    return api_key, item


class KeyDenied(Exception):
    """Why a presented credential was refused, and the org it belongs to if known (for the audit).

    status 401 (unknown, revoked, expired, bad token) or 403 (a person with no group of their organization).
    """

    def __init__(self, reason: str, org_id: str | None = None, key_id: str | None = None, status: int = 401,
                 email: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.org_id = org_id
        self.key_id = key_id
        self.status = status
        self.email = email


def secret_matches(item: dict[str, Any] | None, api_key: str) -> bool:
    """Whether `api_key` is the key stored in `item`; the same work when `item` is None (unknown keyId)."""
    stored = (item or {}).get("hash") or DUMMY_HASH
    return hmac.compare_digest(stored, _hash(api_key)) and item is not None


@dataclass(frozen=True)
class Presented:
    """What a request presented: `Authorization: Bearer` (or `?token=` on /ws).

    The gateways' client certificate (`requestContext.identity.clientCert`) joins here as a field,
    checked first in `identify`.
    """

    bearer: str | None = None


def identify(presented: Presented) -> Principal:
    """The one dispatch point: which identity the request presents, and who that is."""
    token = presented.bearer
    if token and tokens.enabled() and tokens.looks_like_jwt(token):
        return _person(token)
    return _api_key(token)


def authenticate(bearer: str | None) -> Principal:
    """The principal of a bearer credential (`Authorization: Bearer`, `/ws?token=`): identify() on it."""
    return identify(Presented(bearer=bearer))


def _api_key(api_key: str | None) -> Principal:
    if not api_key:
        raise KeyDenied("missing API key")
    if len(api_key) > MAX_KEY_LENGTH:
        raise KeyDenied("unknown API key")
    key_id = key_id_of(api_key)
    item = dynamo.get(settings().main_table, key_pk(key_id))
    # secret_matches first, always: an unknown keyId costs the same HMAC and compare as a known one.
    if not secret_matches(item, api_key) or item is None:
        raise KeyDenied("unknown API key")
    if item.get("revokedAt"):
        raise KeyDenied("revoked API key", item["orgId"], key_id)
    expires = item.get("expiresAt")
    if expires and clock.parse_iso(expires) <= clock.now():
        raise KeyDenied("expired API key", item["orgId"], key_id)
    _note_use(item)
    return Principal(org_id=item["orgId"], key_id=key_id, scope=Scope(item["scope"]),
                     agent_id=item.get("agentId"), root=bool(item.get("root")),
                     expires_at=clock.parse_iso(expires) if expires else None)


# lastUsedAt is written when the stored one is at least this old: one write per key per minute at most.
LAST_USED_PRECISION_SECONDS = 60


def _note_use(item: dict[str, Any]) -> None:
    """Record the key's use, unless it was recorded within the last minute (then: no write at all)."""
    now = clock.now()
    last = item.get("lastUsedAt")
    if last and clock.parse_iso(last) > now - LAST_USED_PRECISION_SECONDS:
        return
    from chalicelib.core.context import Ctx  # here: the unit of work imports this module
    from chalicelib.core.tx import Tx, TxFailed

    # The condition makes concurrent first uses in one minute one write that lands (the others fail
    # their condition and change nothing); a revoked or deleted key's item is never recreated.
    update = dynamo.Update(settings().main_table, key_pk(item["keyId"]), set={"lastUsedAt": clock.iso(now)},
                           condition="attribute_exists(PK) AND (attribute_not_exists(lastUsedAt) OR lastUsedAt <= :cutoff)",
                           values={":cutoff": clock.iso(now - LAST_USED_PRECISION_SECONDS)})
    try:
        tx = Tx(Ctx.system(item["orgId"]))
        tx.update("lastUsed", update)
        tx.commit()
    except TxFailed:
        pass  # another request of this minute wrote it
    except Exception:  # noqa: BLE001 - bookkeeping must not fail the request it describes
        log.warning("could not record the use of key %s", item["keyId"], exc_info=True)


# --- people ---------------------------------------------------------------------------------------

def person_pk(subject: str) -> dict[str, Any]:
    """A person's item (chalicelib/users/store.py writes it; read here on every call the person makes)."""
    return {"PK": f"USER#{subject}", "SK": "USER"}


def person_actor(subject: str) -> str:
    return f"user:{subject}"


GROUP_PREFIX = "org:"


def group_name(org_id: str, scope: Scope) -> str:
    return f"{GROUP_PREFIX}{org_id}:{scope.value}"


def grants_of(groups: tuple[str, ...] | list[str]) -> set[tuple[str, Scope]]:
    """(orgId, scope) for every group `org:<orgId>:<scope>`; other groups grant nothing."""
    found = set()
    for group in groups:
        prefix, _, rest = group.partition(":")
        org_id, _, scope = rest.rpartition(":")
        if prefix + ":" == GROUP_PREFIX and org_id and scope in {s.value for s in Scope}:
            found.add((org_id, Scope(scope)))
    return found


def _person(token: str) -> Principal:
    try:
        claims = tokens.verify(token)
    except tokens.TokenRefused as refused:
        # No organization: the token is not trusted, so neither is the subject it names.
        raise KeyDenied(refused.reason) from None
    actor = person_actor(claims.subject)
    item = dynamo.get(settings().main_table, person_pk(claims.subject))
    if item is None:
        raise KeyDenied("unknown person (not invited into any organization)", None, actor, email=claims.email)
    org_id = str(item["orgId"])
    email = item.get("email") or claims.email
    if item.get("disabledAt"):
        raise KeyDenied("disabled person", org_id, actor, email=email)
    grants = grants_of(claims.groups)
    if not grants:
        raise KeyDenied("the person is in no organization group", org_id, actor, status=403, email=email)
    if any(org != org_id for org, _ in grants):
        raise KeyDenied("a group of the token names another organization", org_id, actor, status=403, email=email)
    scope = max((scope for _, scope in grants), key=lambda s: s.rank)
    return Principal(org_id=org_id, key_id=actor, scope=scope, root=bool(item.get("root")), kind=Kind.PERSON,
                     email=email, expires_at=float(claims.expires_at))


def bearer_token(headers: dict[str, Any]) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


__all__ = ["Scope", "Principal", "Kind", "Presented", "identify", "authenticate", "bearer_token", "new_key", "KeyDenied",
           "Unauthorized", "person_pk", "group_name", "grants_of"]
