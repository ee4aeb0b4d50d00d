"""GitHub tools' DynamoDB items.

  PK ORG#{org}#GITHUB   SK REPOS           - the organization's allow-list (one item; PUT replaces it)
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.config import settings
from chalicelib.github_tools.models import AllowedRepo, RepoList


def _table() -> str:
    return settings().main_table


def repos_key(org_id: str) -> dict[str, str]:
    return {"PK": f"ORG#{org_id}#GITHUB", "SK": "REPOS"}


def repos_put(org_id: str, listing: RepoList) -> dynamo.Put:
    return dynamo.Put(_table(), {
        **repos_key(org_id), "type": "github-repos", "orgId": org_id,
        "repos": json.dumps([r.model_dump(by_alias=True) for r in listing.repos]),
        "updatedAt": listing.updated_at, "updatedBy": listing.updated_by,
    })


def _listing(item: dict[str, Any] | None) -> RepoList:
    if item is None:
        return RepoList(repos=[])
    return RepoList(repos=[AllowedRepo.model_validate(r) for r in json.loads(item["repos"])],
                    updated_at=item.get("updatedAt"), updated_by=item.get("updatedBy"))


def repos(org_id: str) -> RepoList:
    return _listing(dynamo.get(_table(), repos_key(org_id), consistent=True))
