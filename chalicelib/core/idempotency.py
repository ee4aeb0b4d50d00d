"""Idempotency-Key on every POST, through Powertools' idempotency utility.

The key is scoped to the organization, method and route, and the canonical
JSON body is the payload Powertools validates: the same key with another body
raises IdempotencyValidationError (409 IDEMPOTENCY_KEY_REUSED). A replay
returns the stored response; Powertools calls our response hook only then,
which is where `Idempotent-Replayed: true` is added. Only successful responses
are stored: when the handler raises, Powertools deletes the in-progress
record, so a corrected retry with the same key runs.
Cost: a first call is a conditional PutItem plus an UpdateItem; a replay is
one PutItem whose failed condition returns the stored record.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from chalicelib.aws import clients
from chalicelib.core.config import settings
from chalicelib.core.errors import Conflict, IdempotencyKeyReused

_lock = threading.Lock()
_runner: Callable[..., Any] | None = None
_config: IdempotencyConfig | None = None


def _mark_replayed(response: Any, idempotent_data: Any) -> Any:
    response = dict(response)
    response["headers"] = {**response.get("headers", {}), "Idempotent-Replayed": "true"}
    return response


def _build() -> Callable[..., Any]:
    global _config
    _config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="body",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings().idempotency_ttl_seconds,
        response_hook=_mark_replayed,
    )
    store = DynamoDBPersistenceLayer(
        table_name=settings().idempotency_table, boto3_client=clients.client("dynamodb"))

    @idempotent_function(data_keyword_argument="request", persistence_store=store, config=_config)
    def run(request: dict, handler: Callable[[], dict]) -> dict:
        return handler()

    return run


def run_once(scope_key: str, body: Any, handler: Callable[[], dict], lambda_context: Any = None) -> dict:
    """Run `handler` at most once per scope_key; returns {statusCode, headers, body}."""
    global _runner
    if _runner is None:
        with _lock:
            if _runner is None:
                _runner = _build()
    if _config is not None and lambda_context is not None and hasattr(lambda_context, "get_remaining_time_in_millis"):
        _config.register_lambda_context(lambda_context)  # bounds how long an in-progress record blocks retries
    try:
        return _runner(request={"key": scope_key, "body": body}, handler=handler)
    except IdempotencyValidationError:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body",
            [{"field": "Idempotency-Key", "message": "reused with a different body"}]) from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly",
                       [{"field": "Idempotency-Key", "message": "in progress"}]) from None


def reset() -> None:
    global _runner
    _runner = None
