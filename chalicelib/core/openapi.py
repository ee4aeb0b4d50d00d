"""The OpenAPI 3.1 document, built from the endpoint registry and its pydantic models.

The models that validate requests are the ones described here, so the
document cannot drift from what the API accepts.
"""
from __future__ import annotations

import typing
from functools import lru_cache
from typing import Any, Literal

import pydantic
from pydantic.json_schema import models_json_schema

from chalicelib.core.api import ENDPOINTS, ERROR_STATUS, PATH_PARAM, Endpoint

REF = "#/components/schemas/{model}"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "enum": sorted(ERROR_STATUS)},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {
                "type": "object", "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
        }}},
}
REASONS = {400: "Invalid input", 401: "Missing, unknown, revoked or expired key", 403: "Wrong scope",
           404: "Not found (or another organization's)", 409: "Conflict", 413: "Body too large",
           429: "Rate limited", 503: "A dependency is down"}


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, pydantic.BaseModel)


def _list_item(value: Any) -> type[pydantic.BaseModel] | None:
    """The model of a `list[Model]` response, else None."""
    if typing.get_origin(value) is list:
        (item,) = typing.get_args(value)
        return item if _is_model(item) else None
    return None


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    models: list[tuple[type[pydantic.BaseModel], Literal["validation", "serialization"]]] = []
    for ep in ENDPOINTS:
        if ep.body is not None:
            models.append((ep.body, "validation"))
        if _is_model(ep.response):
            models.append((ep.response, "serialization"))
        elif (item := _list_item(ep.response)) is not None:
            models.append((item, "serialization"))
    _, defs = models_json_schema(models, ref_template=REF, by_alias=True)
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for ep in ENDPOINTS:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Agent fleet control plane", "version": "1.0.0",
                 "description": "The control plane's HTTP API: see docs/API.md in the repository."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "Authorization: Bearer <apiKey>"}},
        },
    }


def _ref(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=model.__name__)}


def _parameters(ep: Endpoint) -> list[dict[str, Any]]:
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in PATH_PARAM.findall(ep.path)]
    if ep.query is not None:
        schema = ep.query.model_json_schema(by_alias=True)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    if ep.method == "POST":
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "maxLength": 255},
                       "description": "Repeat with the same body within 24 h, with the same API key: the first "
                                      "response again (without a minted secret, which is shown once)"})
    return params


def _operation(ep: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": ep.summary, "tags": [ep.tag], "operationId": f"{ep.method.lower()}{ep.path}",
                          "parameters": _parameters(ep)}
    if ep.scope is not None:
        op["security"] = [{"bearer": []}]
        op["description"] = f"Needs the `{ep.scope.value}` scope or higher."
    if ep.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(ep.body)}}}
    responses: dict[str, Any] = {}
    if ep.status == 204:
        responses["204"] = {"description": "Done"}
    elif _is_model(ep.response):
        responses[str(ep.status)] = {"description": "OK",
                                     "content": {"application/json": {"schema": _ref(ep.response)}}}
    elif (item := _list_item(ep.response)) is not None:
        schema = {"type": "array", "items": _ref(item)}
        responses[str(ep.status)] = {"description": "OK", "content": {"application/json": {"schema": schema}}}
    else:
        responses[str(ep.status)] = {"description": "OK", "content": {"application/json": {"schema": {}}}}
    if ep.method == "POST" and str(ep.status) in responses:
        responses[str(ep.status)]["headers"] = {"Idempotent-Replayed": {
            "description": "`true` when this is the stored response of an earlier call with the same "
                           "Idempotency-Key (a minted secret is not in it: it is shown once)",
            "schema": {"type": "string", "enum": ["true"]}}}
    for status in ep.also:
        responses[str(status)] = dict(responses[str(ep.status)])
    for status in ep.errors:
        if str(status) in responses:
            continue
        responses[str(status)] = {"description": REASONS.get(status, "Error"),
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op["responses"] = responses
    return op
