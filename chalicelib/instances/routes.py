from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.instances import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Instances and logs"


@endpoint(bp, "/instances", "POST", scope=Scope.OPERATOR, body="CreateInstanceRequest",
          response="Instance", status=201, tag=TAG,
          summary="Register a game-server instance owned by an agent")
def create_instance(call: Call) -> models.Instance:
    return service.create(call.ctx, call.body)


@endpoint(bp, "/instances", "GET", scope=Scope.AGENT, query="InstanceListQuery",
          response="InstanceList", tag=TAG,
          summary="List instances, oldest first (an agent key: its own agent's only)")
def list_instances(call: Call) -> models.InstanceList:
    return service.list_instances(call.ctx, call.query)


@endpoint(bp, "/instances/{instanceId}", "GET", scope=Scope.AGENT, response="Instance", tag=TAG,
          errors=(404,), summary="One instance")
def get_instance(call: Call) -> models.Instance:
    return service.get(call.ctx, call.params["instanceId"])
