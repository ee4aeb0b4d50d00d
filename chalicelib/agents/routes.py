from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.agents import models, service
from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.paging import Page

bp = Blueprint(__name__)
TAG = "Agents and jobs"


@endpoint(bp, "/agents", "POST", scope=Scope.OPERATOR, body=models.RegisterAgentRequest,
          response=models.AgentCreated, status=201, tag=TAG,
          summary="Register an agent; returns a new agent key bound to it (shown once)")
def register_agent(call: Call) -> dict[str, Any]:
    return service.register(call.ctx, call.body)


@endpoint(bp, "/agents", "GET", scope=Scope.OPERATOR, query=models.AgentListQuery, response=models.AgentList,
          tag=TAG, summary="List agents, optionally those of one pool")
def list_agents(call: Call) -> Page[dict[str, Any]]:
    return service.list_agents(call.ctx, call.query)


@endpoint(bp, "/agents/{agentId}", "GET", scope=Scope.AGENT, response=models.AgentResponse, tag=TAG,
          errors=(404,), summary="One agent, with lastSeenAt (an agent key: only its own agent)")
def get_agent(call: Call) -> dict[str, Any]:
    return service.get(call.ctx, call.params["agentId"])


@endpoint(bp, "/agents/{agentId}/heartbeat", "POST", scope=Scope.AGENT, status=204, tag=TAG,
          summary="The agent is alive: renews the leases of all its running jobs")
def heartbeat(call: Call) -> None:
    service.heartbeat(call.ctx, call.params["agentId"])


@endpoint(bp, "/agents/{agentId}/deactivate", "POST", scope=Scope.OPERATOR, response=models.AgentResponse,
          tag=TAG, errors=(404,),
          summary="Deactivate an agent: it gets 403 on poll, progress, complete and heartbeat from now on")
def deactivate(call: Call) -> dict[str, Any]:
    return service.deactivate(call.ctx, call.params["agentId"])
