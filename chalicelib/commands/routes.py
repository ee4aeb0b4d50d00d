from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.commands import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Agent gateway"


@endpoint(bp, "/agents/{agentId}/commands", "POST", scope=Scope.OPERATOR, body="IssueCommandRequest",
          response="CommandResponse", status=201, tag=TAG, errors=(404,),
          summary="Send a command to an agent (status pending); emits command:issued to that agent's WebSocket")
def issue(call: Call) -> models.CommandResponse:
    b = call.body
    return service.issue(call.ctx, service.IssueCommand(call.params["agentId"], b.type, b.payload, b.ttl_seconds,
                                                        b.priority))


@endpoint(bp, "/agents/{agentId}/commands", "GET", scope=Scope.AGENT, query="CommandListQuery",
          response="CommandList", tag=TAG, errors=(404,),
          summary="An agent's commands, oldest first, optionally in one status (pending: highest priority first, "
                  "then oldest; an agent key: its own)")
def list_commands(call: Call) -> models.CommandList:
    q = call.query
    return service.list_for_agent(call.ctx, service.ListCommands(call.params["agentId"], q.status, q.limit,
                                                                   q.next_token))


@endpoint(bp, "/commands/{commandId}", "GET", scope=Scope.AGENT, response="CommandResponse", tag=TAG,
          errors=(404,), summary="One command (an agent key: only its own agent's)")
def get_command(call: Call) -> models.CommandResponse:
    return service.get(call.ctx, call.params["commandId"])


@endpoint(bp, "/commands/{commandId}/ack", "POST", scope=Scope.AGENT, body="AckRequest",
          response="CommandResponse", tag=TAG, errors=(404,),
          summary="The agent's outcome (acked or failed); a second ack answers the first outcome; "
                  "409 INVALID_TRANSITION once expired; emits command:acked")
def ack(call: Call) -> models.CommandResponse:
    b = call.body
    return service.ack(call.ctx, service.AckCommand(call.params["commandId"], b.status, b.result))
