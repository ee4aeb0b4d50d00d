from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.instances import models, service

bp = Blueprint(__name__)
TAG = "Instances and logs"


@endpoint(bp, "/instances", "POST", scope=Scope.OPERATOR, body=models.CreateInstanceRequest,
          response=models.Instance, status=201, tag=TAG,
          summary="Register a game-server instance owned by an agent")
def create_instance(call: Call) -> models.Instance:
    b = call.body
    return models.Instance.model_validate(service.create(call, b.agent_id, b.name, b.game_type, b.metadata))


@endpoint(bp, "/instances", "GET", scope=Scope.AGENT, query=models.InstanceListQuery,
          response=models.InstanceList, tag=TAG,
          summary="List instances, oldest first (an agent key: its own agent's only)")
def list_instances(call: Call) -> dict:
    q = call.query
    page = service.list_instances(call, q.agent_id, q.limit, q.next_token)
    # a dict, not the model: nextToken stays in the body as null on the last page
    return {"items": [models.Instance.model_validate(i) for i in page["items"]], "nextToken": page["nextToken"]}


@endpoint(bp, "/instances/{instanceId}", "GET", scope=Scope.AGENT, response=models.Instance, tag=TAG,
          errors=(404,), summary="One instance")
def get_instance(call: Call) -> models.Instance:
    return models.Instance.model_validate(service.get(call, call.params["instanceId"]))
