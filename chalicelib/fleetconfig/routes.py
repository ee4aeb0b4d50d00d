from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.fleetconfig import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Fleet configuration"


@endpoint(bp, "/config/pools/{pool}", "PUT", scope=Scope.OPERATOR, body="PutConfigRequest",
          response="ConfigWritten", tag=TAG, errors=(409,),
          summary="Replace a pool's document (expectedVersion: the version it replaces, 0 first; stale: 409); "
                  "emits config:changed to every agent of the pool")
def put_pool(call: Call) -> models.ConfigWritten:
    b = call.body
    return service.put_pool(call.ctx, service.PutPoolConfig(call.params["pool"], b.desired.document(),
                                                            b.expected_version))


@endpoint(bp, "/config/pools/{pool}", "GET", scope=Scope.OPERATOR, response="PoolConfig", tag=TAG,
          summary="A pool's own document and version (version 0 and {} before its first write)")
def get_pool(call: Call) -> models.PoolConfig:
    return service.get_pool(call.ctx, call.params["pool"])


@endpoint(bp, "/agents/{agentId}/config", "PUT", scope=Scope.OPERATOR, body="PutConfigRequest",
          response="ConfigWritten", tag=TAG, errors=(404, 409),
          summary="Replace an agent's own document (merged over its pools'; stale expectedVersion: 409); "
                  "emits config:changed to that agent")
def put_agent(call: Call) -> models.ConfigWritten:
    b = call.body
    return service.put_agent(call.ctx, service.PutAgentConfig(call.params["agentId"], b.desired.document(),
                                                              b.expected_version))


@endpoint(bp, "/agents/{agentId}/config", "GET", scope=Scope.AGENT, response="AgentConfigView", tag=TAG,
          errors=(404,),
          summary="The agent's merged document, its version, what its gateway reported and the delta "
                  "(an agent key: its own)")
def get_agent(call: Call) -> models.AgentConfigView:
    return service.get_agent_config(call.ctx, call.params["agentId"])


@endpoint(bp, "/agents/{agentId}/config/reported", "POST", scope=Scope.AGENT, body="ReportRequest",
          response="AgentConfigView", tag=TAG, errors=(404, 409),
          summary="The gateway reports what it did with a version (applied | failed); only that agent's key; "
                  "a version newer than the desired one: 409")
def report(call: Call) -> models.AgentConfigView:
    b = call.body
    return service.report(call.ctx, service.ReportConfig(call.params["agentId"], b.version, b.status, b.error))


@endpoint(bp, "/schemas/agent-config.json", "GET", scope=None, response=dict, tag=TAG,
          summary="JSON Schema 2020-12 of the configuration document (unknown keys refused)")
def agent_config_schema(call: Call) -> dict[str, Any]:
    return service.schema()
