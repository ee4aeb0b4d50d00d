from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.logs import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Instances and logs"


@endpoint(bp, "/instances/{instanceId}/logs", "POST", scope=Scope.AGENT, body="PushLogsRequest",
          response="PushLogsResult", status=202, tag=TAG, errors=(404, 503),
          idempotency="locked",  # bulk writes (BatchWriteItem) cannot join a transaction
          summary="Push 1..500 log entries for an instance (its agent's key, or an operator); emits instance:log")
def push_logs(call: Call) -> models.PushLogsResult:
    return service.push(call.ctx, service.PushLogs(call.params["instanceId"], call.body.entries,
                                                   call.idempotency_key))


@endpoint(bp, "/instances/{instanceId}/logs", "GET", scope=Scope.AGENT, query="LogQuery",
          response="list[LogEntry]", tag=TAG, errors=(404,),
          summary="Log entries, oldest first: the newest `limit`, or the first `limit` strictly after `since`")
def read_logs(call: Call) -> list[models.LogEntry]:
    return service.read(call.ctx, service.ReadLogs(call.params["instanceId"], call.query))
