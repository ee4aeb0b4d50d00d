from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.agents import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Agents and jobs"


@endpoint(bp, "/agents", "POST", scope=Scope.OPERATOR, body="RegisterAgentRequest",
          response="AgentCreated", status=201, tag=TAG,
          summary="Register an agent; returns a new agent key bound to it (shown once)")
def register_agent(call: Call) -> models.AgentCreated:
    return service.register(call.ctx, call.body)


@endpoint(bp, "/agents", "GET", scope=Scope.OPERATOR, query="AgentListQuery", response="AgentList",
          tag=TAG, summary="List agents, optionally those of one pool")
def list_agents(call: Call) -> models.AgentList:
    return service.list_agents(call.ctx, call.query)


@endpoint(bp, "/agents/{agentId}", "GET", scope=Scope.AGENT, response="AgentResponse", tag=TAG,
          errors=(404,), summary="One agent, with lastSeenAt (an agent key: only its own agent)")
def get_agent(call: Call) -> models.Agent:
    return service.get(call.ctx, call.params["agentId"])


@endpoint(bp, "/agents/{agentId}/heartbeat", "POST", scope=Scope.AGENT, status=204, tag=TAG,
          summary="The agent is alive: renews the leases of all its running jobs")
def heartbeat(call: Call) -> None:
    service.heartbeat(call.ctx, call.params["agentId"])


@endpoint(bp, "/agents/{agentId}/deactivate", "POST", scope=Scope.OPERATOR, response="AgentResponse",
          tag=TAG, errors=(404,), idempotency="locked",  # closes the agent's sockets after its commit
          summary="Deactivate an agent: it gets 403 on poll, progress, complete and heartbeat from now on")
def deactivate(call: Call) -> models.Agent:
    return service.deactivate(call.ctx, call.params["agentId"])
