"""GET /health (no auth) and GET /openapi.json."""
from __future__ import annotations

import logging
from typing import Optional

from chalice import Blueprint

from chalicelib.aws import dynamo, queues
from chalicelib.core import openapi
from chalicelib.core.api import Call, Reply, endpoint
from chalicelib.core.config import settings
from chalicelib.core.models import ResponseModel

log = logging.getLogger(__name__)
bp = Blueprint(__name__)
TAG = "System"


class HealthError(ResponseModel):
    code: str
    message: str


class Health(ResponseModel):
    status: str
    checks: dict[str, str]
    error: Optional[HealthError] = None


def _check(name: str, probe) -> str:
    try:
        probe()
        return "ok"
    except Exception as e:  # noqa: BLE001 - any failure means the dependency is down
        log.warning("health check %s failed: %s", name, e)
        return f"unavailable: {type(e).__name__}"


@endpoint(bp, "/health", "GET", scope=None, response=Health, errors=(503,), tag=TAG,
          summary="Liveness of the API and its dependencies (DynamoDB, SQS); 503 when one is down")
def health(call: Call) -> Reply:
    # A GetItem of a key that never exists and a queue attribute read: the
    # cheapest data-plane calls that prove each dependency answers.
    checks = {
        "dynamodb": _check("dynamodb", lambda: dynamo.get(settings().main_table, {"PK": "HEALTH", "SK": "HEALTH"})),
        "sqs": _check("sqs", lambda: queues.depth(settings().jobs_queue_url)),
    }
    if all(v == "ok" for v in checks.values()):
        return Reply({"status": "ok", "checks": checks})
    # 503 keeps the contract's error shape beside the checks.
    return Reply({"status": "unavailable", "checks": checks,
                  "error": {"code": "UNAVAILABLE", "message": "a dependency is down"}}, status=503)


@endpoint(bp, "/openapi.json", "GET", scope=None, response=dict, tag=TAG,
          summary="This API's OpenAPI 3.1 document, generated from the models that validate requests")
def openapi_document(call: Call) -> dict:
    return openapi.document()


@endpoint(bp, "/health", "HEAD", scope=None, tag=TAG,
          summary="GET /health without a body: 200 when every dependency answers, else 503")
def health_head(call: Call) -> Reply:
    return Reply(None, status=health(call).status)
