from __future__ import annotations

from chalice import Blueprint

from chalicelib.agents import models, service
from chalicelib.core.paging import next_token as encode_token, start_key as page_start
from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope

bp = Blueprint(__name__)
TAG = "Agents and jobs"


def act_as(call: Call, agent_id: str) -> None:
    """An agent key may only act as its own agent (403; the pipeline audits every 403)."""
    call.principal.require_agent(agent_id)


@endpoint(bp, "/agents", "POST", scope=Scope.OPERATOR, body=models.RegisterAgentRequest,
          response=models.AgentCreated, status=201, tag=TAG,
          summary="Register an agent; returns a new agent key bound to it (shown once)")
def register_agent(call: Call) -> dict:
    b = call.body
    return service.register(call.principal, b.name, b.pools, b.tags, b.metadata, call.trace_id)


@endpoint(bp, "/agents", "GET", scope=Scope.OPERATOR, query=models.AgentListQuery, response=models.AgentList,
          tag=TAG, summary="List agents, optionally those of one pool")
def list_agents(call: Call) -> dict:
    q = call.query
    scope = f"agents:{call.org_id}:{q.pool or ''}"
    start = page_start(q.next_token, scope)
    items, last = service.list_page(call.org_id, q.pool, q.limit, start)
    return {"items": items, "nextToken": encode_token(last, scope)}


@endpoint(bp, "/agents/{agentId}", "GET", scope=Scope.AGENT, response=models.AgentResponse, tag=TAG,
          errors=(404,), summary="One agent, with lastSeenAt (an agent key: only its own agent)")
def get_agent(call: Call) -> dict:
    act_as(call, call.params["agentId"])
    return service.get(call.org_id, call.params["agentId"])


@endpoint(bp, "/agents/{agentId}/heartbeat", "POST", scope=Scope.AGENT, status=204, tag=TAG,
          summary="The agent is alive: renews the leases of all its running jobs")
def heartbeat(call: Call) -> None:
    agent_id = call.params["agentId"]
    act_as(call, agent_id)
    service.heartbeat(call.org_id, agent_id)
    return None


@endpoint(bp, "/agents/{agentId}/deactivate", "POST", scope=Scope.OPERATOR, response=models.AgentResponse,
          tag=TAG, errors=(404,),
          summary="Deactivate an agent: it gets 403 on poll, progress, complete and heartbeat from now on")
def deactivate(call: Call) -> dict:
    return service.deactivate(call.principal, call.params["agentId"], call.trace_id)
