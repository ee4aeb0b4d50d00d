"""GET /health (no auth), GET /openapi.json, GET /asyncapi.json and the JSON Schemas under /schemas."""
from __future__ import annotations

from typing import Any, TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, Reply, endpoint
from chalicelib.core.lazy import lazy

if TYPE_CHECKING:
    from chalicelib.core import openapi
    from chalicelib.events import asyncapi
    from chalicelib.system import schemas, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    openapi, service = lazy("chalicelib.core.openapi"), lazy("chalicelib.system.service")
    asyncapi = lazy("chalicelib.events.asyncapi")
    schemas = lazy("chalicelib.system.schemas")

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


# --- JSON Schemas of what a factory sends and receives (system/schemas.py) ----------------

def _schema(document: dict[str, Any] | None, name: str) -> dict[str, Any]:
    from chalicelib.core.errors import NotFound

    if document is None:
        raise NotFound(f"no schema {name[:100]!r}: GET /schemas lists them")
    return document


@endpoint(bp, "/schemas", "GET", scope=None, response=dict, tag=TAG,
          summary="The published JSON Schemas (patch batch, patch events, every WebSocket message)")
def schema_index(call: Call) -> dict[str, Any]:
    return schemas.index()


@endpoint(bp, "/schemas/patch-batch.json", "GET", scope=None, response=dict, tag=TAG,
          summary="JSON Schema 2020-12 of a patch batch (POST /api/patches/apply), from the model that validates it")
def patch_batch_schema(call: Call) -> dict[str, Any]:
    return _schema(schemas.model_document("patch-batch.json"), "patch-batch.json")


@endpoint(bp, "/schemas/patch-event.json", "GET", scope=None, response=dict, tag=TAG,
          summary="JSON Schema 2020-12 of one stored patch event")
def patch_event_schema(call: Call) -> dict[str, Any]:
    return _schema(schemas.model_document("patch-event.json"), "patch-event.json")


@endpoint(bp, "/schemas/patch-events.json", "GET", scope=None, response=dict, tag=TAG,
          summary="JSON Schema 2020-12 of a batch applied outside the control plane (POST /api/patches/events)")
def patch_events_schema(call: Call) -> dict[str, Any]:
    return _schema(schemas.model_document("patch-events.json"), "patch-events.json")


@endpoint(bp, "/schemas/events/{name}", "GET", scope=None, response=dict, tag=TAG, errors=(404,),
          summary="JSON Schema 2020-12 of one WebSocket message (`patch.applied.json` for patch:applied)")
def event_schema(call: Call) -> dict[str, Any]:
    return _schema(schemas.event_document(call.params["name"]), call.params["name"])
