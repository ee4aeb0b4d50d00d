"""API keys, principals and scopes.

A key looks like ``cpk.<keyId>.<secret>``; the keyId finds its item with one
GetItem and the item holds only HMAC-SHA256(pepper, key), never the key. A
key in another format (ADMIN_API_KEY may be any string) is found by an id
derived from its keyed hash. No cache: a revoked key fails on its next
request.

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

from chalicelib.aws import dynamo
from chalicelib.core import clock, ids
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


@dataclass(frozen=True)
class Principal:
    org_id: str
    key_id: str
    scope: Scope
    agent_id: str | None = None
    root: bool = False  # the key belongs to the root organization

    @property
    def actor(self) -> str:
        """Who acted, as audit events record it: the agent for an agent key, else the key."""
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
    """Why a presented key was refused, and the org it belongs to if known (for the audit)."""

    def __init__(self, reason: str, org_id: str | None = None, key_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.org_id = org_id
        self.key_id = key_id


def secret_matches(item: dict[str, Any] | None, api_key: str) -> bool:
    """Whether `api_key` is the key stored in `item`; the same work when `item` is None (unknown keyId)."""
    stored = (item or {}).get("hash") or DUMMY_HASH
    return hmac.compare_digest(stored, _hash(api_key)) and item is not None


def authenticate(api_key: str | None) -> Principal:
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
    return Principal(org_id=item["orgId"], key_id=key_id, scope=Scope(item["scope"]),
                     agent_id=item.get("agentId"), root=bool(item.get("root")))


def bearer_token(headers: dict[str, Any]) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


__all__ = ["Scope", "Principal", "authenticate", "bearer_token", "new_key", "KeyDenied", "Unauthorized"]
