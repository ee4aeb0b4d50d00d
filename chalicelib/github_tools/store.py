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


# --- invocations that did not answer at once (approved later, or retried after a rate limit) ---
#
#   PK ORG#{org}#GHINV#{invocationId}   SK INV   - status running -> succeeded | failed | queued
#
# Written when a deferred invocation is claimed: the claim's condition is what makes a run happen
# once although the stream and the queue deliver at least once.

INVOCATION_TTL_SECONDS = 30 * 86400


def invocation_key(org_id: str, invocation_id: str) -> dict[str, str]:
    return {"PK": f"ORG#{org_id}#GHINV#{invocation_id}", "SK": "INV"}


def claim_invocation(org_id: str, invocation_id: str, attempt: int, tool: str, repo: str, at: str,
                     now: float) -> dynamo.Put:
    """Run attempt `attempt` of an invocation: only if it never ran, or an earlier attempt was queued."""
    return dynamo.Put(_table(), {
        **invocation_key(org_id, invocation_id), "type": "github-invocation", "orgId": org_id,
        "invocationId": invocation_id, "tool": tool, "repo": repo, "status": "running", "attempt": attempt,
        "updatedAt": at, "ttl": int(now) + INVOCATION_TTL_SECONDS,
    }, condition="attribute_not_exists(PK) OR (#s = :queued AND #a < :attempt)",
        names={"#s": "status", "#a": "attempt"}, values={":queued": "queued", ":attempt": attempt})


def finish_invocation(org_id: str, invocation_id: str, status: str, at: str,
                      outcome: dict[str, Any] | None) -> dynamo.Update:
    return dynamo.Update(_table(), invocation_key(org_id, invocation_id),
                         set={"status": status, "updatedAt": at,
                              "outcome": json.dumps(outcome) if outcome is not None else None},
                         condition="#st = :running", names={"#st": "status"}, values={":running": "running"})


def release_invocation(org_id: str, invocation_id: str, attempt: int) -> dynamo.Delete:
    """Give back a claim whose run failed for a reason of ours (not GitHub's): redelivery may claim again."""
    return dynamo.Delete(_table(), invocation_key(org_id, invocation_id),
                         condition="#s = :running AND #a = :attempt", names={"#s": "status", "#a": "attempt"},
                         values={":running": "running", ":attempt": attempt})


def get_invocation(org_id: str, invocation_id: str) -> dict[str, Any] | None:
    return dynamo.get(_table(), invocation_key(org_id, invocation_id), consistent=True)


# --- the per-organization rate limit: one counter per organization and minute ---------------

def rate_key(org_id: str, minute: int) -> dict[str, str]:
    return {"PK": f"ORG#{org_id}#GHRATE", "SK": str(minute)}


def take_rate(org_id: str, minute: int, limit: int) -> dynamo.Update:
    """One more invocation this minute, unless `limit` were made already (the condition fails)."""
    return dynamo.Update(_table(), rate_key(org_id, minute), add={"n": 1},
                         set={"ttl": (minute + 2) * 60},
                         condition="attribute_not_exists(#n) OR #n < :limit", names={"#n": "n"},
                         values={":limit": limit})
