"""GitHub tools: the allow-list of repositories per organization (and the tools, in later modules)."""
from __future__ import annotations

from chalicelib.core.context import Ctx
from chalicelib.github_tools import models, store

ENTITY = "github-repos"


def put_repos(ctx: Ctx, command: models.RepoListPut) -> models.RepoList:
    """Replace the organization's allow-list (admin): one item, audited in the same commit."""
    listing = models.RepoList(
        repos=[models.AllowedRepo(repo=r.repo, tools=r.tools, require_approval=r.require_approval)
               for r in command.repos],
        updated_at=ctx.iso(), updated_by=ctx.actor)
    tx = ctx.tx()
    tx.put("repos", store.repos_put(ctx.org_id, listing))
    tx.audit(ENTITY, ctx.org_id, "replaced", {"repos": [r.repo for r in listing.repos][:50],
                                               "count": len(listing.repos)})
    tx.commit()
    return listing


def get_repos(ctx: Ctx) -> models.RepoList:
    return store.repos(ctx.org_id)


def allowed_repositories(org_id: str) -> list[models.AllowedRepo]:
    """The organization's allow-listed repositories, for other domains (the ops scan's CI-failures
    source reads which repositories it may look at). One strongly consistent GetItem."""
    return store.repos(org_id).repos


def allowed_repository(org_id: str, repo: str) -> models.AllowedRepo | None:
    """One repository's entry (names compared case-insensitively, as GitHub does), or None."""
    wanted = repo.lower()
    return next((r for r in allowed_repositories(org_id) if r.repo.lower() == wanted), None)
