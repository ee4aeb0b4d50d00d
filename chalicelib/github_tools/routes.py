"""GitHub tools over HTTP: the allow-list (admin), the registry and invocations (agent or operator)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.github_tools import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "GitHub tools"


@endpoint(bp, "/github/repos", "PUT", scope=Scope.ADMIN, body="RepoListPut", response="RepoList", tag=TAG,
          summary="Replace the organization's allow-list of repositories, the tools each may use and the "
                  "tools that need approval")
def put_repos(call: Call) -> models.RepoList:
    return service.put_repos(call.ctx, call.body)


@endpoint(bp, "/github/repos", "GET", scope=Scope.OPERATOR, response="RepoList", tag=TAG,
          summary="The organization's allow-list of repositories")
def get_repos(call: Call) -> models.RepoList:
    return service.get_repos(call.ctx)
