"""GET /health (no auth), GET /openapi.json and GET /asyncapi.json."""
from __future__ import annotations

from typing import Any, TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, Reply, endpoint
from chalicelib.core.lazy import lazy

if TYPE_CHECKING:
    from chalicelib.core import openapi
    from chalicelib.events import asyncapi
    from chalicelib.system import service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    openapi, service = lazy("chalicelib.core.openapi"), lazy("chalicelib.system.service")
    asyncapi = lazy("chalicelib.events.asyncapi")

bp = Blueprint(__name__)
TAG = "System"


@endpoint(bp, "/health", "GET", scope=None, response="Health", errors=(503,), tag=TAG,
          summary="Liveness of the API and its dependencies (DynamoDB, SQS); 503 when one is down")
def health(call: Call) -> Reply:
    report = service.health(call.ctx)
    # 503 keeps the contract's error shape beside the checks.
    return Reply(report, status=200 if report["status"] == "ok" else 503)


@endpoint(bp, "/openapi.json", "GET", scope=None, response=dict, tag=TAG,
          summary="This API's OpenAPI 3.1 document, generated from the models that validate requests")
def openapi_document(call: Call) -> dict[str, Any]:
    return openapi.document()


@endpoint(bp, "/asyncapi.json", "GET", scope=None, response=dict, tag=TAG,
          summary="The WebSocket's AsyncAPI 3.0 document (connect, every event's payload schema, client actions), "
                  "generated from the models the app emits with")
def asyncapi_document(call: Call) -> dict[str, Any]:
    return asyncapi.document()


@endpoint(bp, "/health", "HEAD", scope=None, tag=TAG,
          summary="GET /health without a body: 200 when every dependency answers, else 503")
def health_head(call: Call) -> Reply:
    return Reply(None, status=health(call).status)
