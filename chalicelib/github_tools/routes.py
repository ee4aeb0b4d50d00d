"""GitHub tools over HTTP: the allow-list (admin), the registry and invocations (agent or operator)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, Reply, endpoint
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


@endpoint(bp, "/github/tools", "GET", scope=Scope.AGENT, response="list[ToolSpec]", tag=TAG,
          summary="The GitHub tool registry: each tool's name, a description for a language model, and the "
                  "JSON Schema of its input")
def list_tools(call: Call) -> list[models.ToolSpec]:
    return service.list_tools(call.ctx)


@endpoint(bp, "/github/tools/{name}/invoke", "POST", scope=Scope.AGENT, body="InvokeRequest",
          response="InvokeResult", also=(202,), tag=TAG, errors=(403, 404, 409, 429, 503), idempotency="locked",
          summary="Run a GitHub tool on an allow-listed repository with a credential narrowed to it: 200 "
                  "{result}; 202 awaiting_approval or queued (outcome: the github:invoked event)")
def invoke(call: Call) -> Reply:
    done = service.invoke(call.ctx, service.Invoke(tool=call.params["name"], input=call.body.input,
                                                   session_id=call.body.session_id))
    return Reply(done.body, status=done.status)
