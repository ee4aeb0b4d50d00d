"""GitHub tools' DynamoDB items.

  PK ORG#{org}#GITHUB   SK REPOS           - the organization's allow-list (one item; PUT replaces it)
  PK ORG#{org}#GHINV#{id}  SK INV          - a deferred invocation's claim (a lease) and outcome
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.config import settings
from chalicelib.github_tools.models import AllowedRepo, RepoList
from chalicelib.github_tools.rules import LEASE_SECONDS


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
# once although the stream and the queue deliver at least once. A claim is a lease: `leaseId` (whose
# run holds it) and `leaseUntil` (epoch seconds, rules.LEASE_SECONDS after the claim). A run that
# died holding it (Lambda timeout, crash) is taken over by a redelivery once the lease has expired,
# and a run whose lease was taken over can no longer record its outcome (every later write of the
# run is conditional on its own leaseId).

INVOCATION_TTL_SECONDS = 30 * 86400


def invocation_key(org_id: str, invocation_id: str) -> dict[str, str]:
    return {"PK": f"ORG#{org_id}#GHINV#{invocation_id}", "SK": "INV"}


def _claim_item(org_id: str, invocation_id: str, attempt: int, tool: str, repo: str, at: str, now: float,
                lease_id: str) -> dict[str, Any]:
    return {**invocation_key(org_id, invocation_id), "type": "github-invocation", "orgId": org_id,
            "invocationId": invocation_id, "tool": tool, "repo": repo, "status": "running", "attempt": attempt,
            "leaseId": lease_id, "leaseUntil": int(now) + LEASE_SECONDS + 1,  # whole seconds, never shorter
            "updatedAt": at, "ttl": int(now) + INVOCATION_TTL_SECONDS}


def claim_invocation(org_id: str, invocation_id: str, attempt: int, tool: str, repo: str, at: str,
                     now: float, lease_id: str) -> dynamo.Put:
    """Run attempt `attempt` of an invocation: only if it never ran, or an earlier attempt was queued.
    A failed condition hands back the item (dynamo.put asks for it): rules.claim_verdict reads it."""
    return dynamo.Put(_table(), _claim_item(org_id, invocation_id, attempt, tool, repo, at, now, lease_id),
                      condition="attribute_not_exists(PK) OR (#s = :queued AND #a < :attempt)",
                      names={"#s": "status", "#a": "attempt"}, values={":queued": "queued", ":attempt": attempt},
                      return_old_on_failure=True)


def take_over_invocation(org_id: str, invocation_id: str, attempt: int, tool: str, repo: str, at: str,
                         now: float, lease_id: str, seen: dict[str, Any]) -> dynamo.Put:
    """Take over the expired lease `seen` (the item as this run read it): only if that same lease is
    still there, so of any number of runs that saw it expire, exactly one takes it."""
    if seen.get("leaseId") is None:  # a claim written before leases: the same run, by its attempt and time
        condition = "#s = :running AND attribute_not_exists(#l) AND #a = :seen_attempt AND #u = :seen_at"
        values: dict[str, Any] = {":running": "running", ":seen_attempt": seen.get("attempt"),
                                  ":seen_at": seen.get("updatedAt")}
        names = {"#s": "status", "#l": "leaseId", "#a": "attempt", "#u": "updatedAt"}
    else:
        condition = "#s = :running AND #l = :seen_lease AND #lu < :now"
        values = {":running": "running", ":seen_lease": seen["leaseId"], ":now": now}
        names = {"#s": "status", "#l": "leaseId", "#lu": "leaseUntil"}
    return dynamo.Put(_table(), {**_claim_item(org_id, invocation_id, attempt, tool, repo, at, now, lease_id),
                                 "takenOver": int(seen.get("takenOver") or 0) + 1},
                      condition=condition, names=names, values=values, return_old_on_failure=True)


def finish_invocation(org_id: str, invocation_id: str, status: str, at: str,
                      outcome: dict[str, Any] | None, lease_id: str) -> dynamo.Update:
    """The run's outcome, only while the run still holds its lease (not taken over)."""
    return dynamo.Update(_table(), invocation_key(org_id, invocation_id),
                         set={"status": status, "updatedAt": at,
                              "outcome": json.dumps(outcome) if outcome is not None else None},
                         remove=("leaseUntil",),
                         condition="#st = :running AND #l = :lease", names={"#st": "status", "#l": "leaseId"},
                         values={":running": "running", ":lease": lease_id})


def rejected_invocation(org_id: str, invocation_id: str, tool: str, repo: str, at: str, now: float,
                        outcome: dict[str, Any]) -> dynamo.Put:
    """A rejected approval's invocation, failed at once (never ran): one write, no lease to leave behind."""
    return dynamo.Put(_table(), {
        **invocation_key(org_id, invocation_id), "type": "github-invocation", "orgId": org_id,
        "invocationId": invocation_id, "tool": tool, "repo": repo, "status": "failed", "attempt": 1,
        "outcome": json.dumps(outcome), "updatedAt": at, "ttl": int(now) + INVOCATION_TTL_SECONDS,
    }, condition="attribute_not_exists(PK)")


def release_invocation(org_id: str, invocation_id: str, lease_id: str) -> dynamo.Delete:
    """Give back a claim whose run failed for a reason of ours (not GitHub's): redelivery may claim again."""
    return dynamo.Delete(_table(), invocation_key(org_id, invocation_id),
                         condition="#s = :running AND #l = :lease", names={"#s": "status", "#l": "leaseId"},
                         values={":running": "running", ":lease": lease_id})


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
