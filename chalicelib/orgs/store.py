"""Organizations and their keys.

  PK ORG#{orgId}, SK ORG                  - the organization
  PK ROOT, SK ROOT                        - which organization is the root one
  PK KEY#{keyId}, SK KEY                  - a key (core/auth.py reads it on every request)
  GSI1PK ORG#{orgId}#KEYS, GSI1SK keyId   - an org's keys, for GET /keys
  GSI1PK ORGS, GSI1SK orgId               - every organization, for schedules that visit each (the lease sweep)
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core import clock
from chalicelib.core.auth import key_pk
from chalicelib.core.config import settings
from chalicelib.orgs.models import KeyInfo

ROOT_KEY = {"PK": "ROOT", "SK": "ROOT"}
ALL_ORGS = "ORGS"


def _table() -> str:
    return settings().main_table


def org_put(org_id: str, name: str, root: bool = False) -> dynamo.Put:
    return dynamo.Put(_table(), {"PK": f"ORG#{org_id}", "SK": "ORG", "type": "org", "orgId": org_id,
                                 "name": name, "root": root, "createdAt": clock.iso(),
                                 "GSI1PK": ALL_ORGS, "GSI1SK": org_id},
                      condition="attribute_not_exists(PK)")


def org_ids() -> Iterator[str]:
    """Every organization's id, a page at a time (one Query per 1 MB of org items)."""
    for item in dynamo.query_all(_table(), "GSI1PK = :pk", {":pk": ALL_ORGS}, index="GSI1"):
        yield item["GSI1SK"]


def root_pointer_put(org_id: str) -> dynamo.Put:
    return dynamo.Put(_table(), {**ROOT_KEY, "orgId": org_id}, condition="attribute_not_exists(PK)")


def root_org_id() -> str | None:
    item = dynamo.get(_table(), ROOT_KEY, consistent=True)
    return item["orgId"] if item else None


def key_from_item(item: dict[str, Any]) -> KeyInfo:
    return KeyInfo(key_id=item["keyId"], name=item["name"], scope=item["scope"], agent_id=item.get("agentId"),
                   expires_at=item.get("expiresAt"), revoked_at=item.get("revokedAt"), created_at=item["createdAt"],
                   last_used_at=item.get("lastUsedAt"))


@dataclass(frozen=True)
class KeyPage:
    items: list[KeyInfo]
    last_key: dict[str, Any] | None


def key_item_put(item: dict[str, Any]) -> dynamo.Put:
    return dynamo.Put(_table(), item, condition="attribute_not_exists(PK)")


def get_key(key_id: str) -> tuple[str, KeyInfo] | None:
    """The key and the organization it belongs to."""
    item = dynamo.get(_table(), key_pk(key_id))
    return (item["orgId"], key_from_item(item)) if item else None


def revoke_update(org_id: str, key_id: str) -> dynamo.Update:
    # The org condition makes another org's key indistinguishable from a missing one.
    return dynamo.Update(_table(), key_pk(key_id), set={"revokedAt": clock.iso()},
                         condition="attribute_exists(PK) AND orgId = :org AND attribute_not_exists(revokedAt)",
                         values={":org": org_id})


def list_keys(org_id: str, limit: int, start_key: dict[str, Any] | None) -> KeyPage:
    page = dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#KEYS"}, index="GSI1",
                        limit=limit, start_key=start_key)
    return KeyPage([key_from_item(i) for i in page.items], page.last_key)
