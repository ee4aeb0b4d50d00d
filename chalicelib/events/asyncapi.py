"""The AsyncAPI 3.0 document of the WebSocket (GET /asyncapi.json, docs/asyncapi.json).

Built from the event catalog (events/catalog.py): each event's payload schema
is the JSON Schema of the model the app's data must match, so the document
cannot drift from what is emitted without a test noticing (tests validate
every event they receive against it). The document describes the control
plane's side: it *sends* every event and *receives* the client's `ping`,
answered with `system:pong`.

Schemas are JSON Schema as pydantic writes it, kept inside the AsyncAPI
Schema format (a superset of draft-07): models are closed
(`additionalProperties: false`: a view is exactly its fields), free-form
fields (payload, result, metadata) stay open.
"""
from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from chalicelib.events import catalog

SCHEMA_REF = "#/components/schemas/{model}"
CHANNEL = "ws"
BINDING_VERSION = "0.1.0"
# JSON Schema keywords newer than draft-07 that pydantic could write; the AsyncAPI Schema format has none of them.
_NOT_DRAFT_07 = {"prefixItems", "$defs", "unevaluatedProperties", "dependentRequired", "dependentSchemas",
                 "$anchor", "$dynamicRef"}


def message_key(event: str) -> str:
    """The component key of an event (keys allow [A-Za-z0-9.-_]): "job:queued" -> "job.queued"."""
    return event.replace(":", ".")


def _operation_id(event: str) -> str:
    return "send" + "".join(part[:1].upper() + part[1:] for part in re.split(r"[:\-_]", event))


def _close_objects(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's schema closed to fields it does not declare (unless the model says otherwise)."""
    if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
        return {**schema, "additionalProperties": False}
    return schema


def _envelope(event: str, data_ref: str) -> dict[str, Any]:
    return {"type": "object", "required": ["event", "data"], "additionalProperties": False,
            "properties": {"event": {"type": "string", "const": event}, "data": {"$ref": data_ref}}}


@cache
def document() -> dict[str, Any]:
    models = {event: catalog.model(event) for event in catalog.EVENTS}
    unique = list(dict.fromkeys(models.values()))
    refs, defs = models_json_schema([(m, "serialization") for m in unique], ref_template=SCHEMA_REF,
                                    by_alias=True)
    schemas = {name: _close_objects(schema) for name, schema in sorted(defs.get("$defs", {}).items())}
    messages: dict[str, Any] = {}
    for event, model in models.items():
        data_ref = refs[(model, "serialization")]["$ref"]
        messages[message_key(event)] = {
            "name": event, "title": event, "summary": catalog.SUMMARIES[event],
            "contentType": "application/json", "payload": _envelope(event, data_ref),
        }
    messages["ping"] = {
        "name": "ping", "title": "ping", "contentType": "application/json",
        "summary": "Keeps the connection alive (API Gateway closes one idle for 10 minutes); answered with "
                   "system:pong. Any other client message (invalid JSON, an unknown action) is ignored and "
                   "logged; the connection stays open.",
        "payload": {"type": "object", "required": ["action"],
                    "properties": {"action": {"type": "string", "const": "ping"}}},
    }
    channel_messages = {key: {"$ref": f"#/components/messages/{key}"} for key in messages}
    operations: dict[str, Any] = {
        _operation_id(event): {
            "action": "send", "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "summary": catalog.SUMMARIES[event],
            "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{message_key(event)}"}],
        }
        for event in models if event != "system:pong"  # the pong is the ping's reply
    }
    operations["receivePing"] = {
        "action": "receive", "channel": {"$ref": f"#/channels/{CHANNEL}"},
        "summary": "The client's ping; the answer is system:pong on the same connection",
        "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/ping"}],
        "reply": {"channel": {"$ref": f"#/channels/{CHANNEL}"},
                  "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{message_key('system:pong')}"}]},
    }
    doc = {
        "asyncapi": "3.0.0",
        "id": "urn:agent-fleet-control-plane:websocket",
        "info": {
            "title": "Agent fleet control plane: WebSocket",
            "version": "1.0.0",
            "description": "The live view of an organization: every event of the control plane, pushed as it "
                           "happens. Every message is one JSON text frame `{\"event\": name, \"data\": {...}}`. "
                           "See docs/WEBSOCKET_PROTOCOL.md in the repository; the REST API is GET /openapi.json.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "127.0.0.1:8000", "protocol": "ws", "pathname": "/ws",
                      "description": "The local stack (make run)",
                      "security": [{"$ref": "#/components/securitySchemes/token"}]},
            "aws": {"host": "{apiId}.execute-api.{region}.amazonaws.com", "protocol": "wss", "pathname": "/{stage}",
                    "description": "API Gateway's WebSocket API (chalice deploy prints the URL)",
                    "variables": {"apiId": {"description": "The WebSocket API's id"},
                                  "region": {"description": "The AWS region"},
                                  "stage": {"default": "ws", "description": "The stage"}},
                    "security": [{"$ref": "#/components/securitySchemes/token"}]},
        },
        "channels": {CHANNEL: {
            "address": None,  # the server's pathname is the whole address: one channel per connection
            "title": "One connection",
            "description": "Connect with ?token=<apiKey or OIDC token>. No, an unknown, a revoked or an expired "
                           "token: the upgrade is refused with HTTP 401 (and the refusal is audited). The first "
                           "message is system:connected. Admin and operator keys receive every event of their "
                           "organization; an agent key only its own agent's events. Delivery is at most once, in "
                           "the order of the changes; REST is the source of truth. With ?batch=1 the events of "
                           "one fan-out batch come as system:batch messages (one event alone as itself).",
            "messages": channel_messages,
            "bindings": {"ws": {
                "method": "GET",
                "query": {"type": "object", "required": ["token"],
                          "properties": {"token": {"type": "string", "description": "An API key or an OIDC token"},
                                         "batch": {"type": "string", "enum": ["1", "true"],
                                                   "description": "Several events per message (system:batch)"}}},
                "bindingVersion": BINDING_VERSION,
            }},
            "x-upgrade-refused": {"status": 401, "when": "the token is missing, unknown, revoked or expired"},
        }},
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "securitySchemes": {"token": {
                "type": "httpApiKey", "name": "token", "in": "query",
                "description": "The API key (or OIDC token) in the query: browsers cannot set headers on an "
                               "upgrade. Refused: HTTP 401, no connection.",
            }},
        },
    }
    _assert_draft_07(schemas)
    return doc


def _assert_draft_07(value: Any) -> None:
    if isinstance(value, dict):
        newer = _NOT_DRAFT_07 & value.keys()
        if newer:
            raise ValueError(f"a payload schema uses {sorted(newer)}, which the AsyncAPI Schema format lacks")
        for item in value.values():
            _assert_draft_07(item)
    elif isinstance(value, list):
        for item in value:
            _assert_draft_07(item)


def text() -> str:
    """The document as docs/asyncapi.json holds it (sorted keys: a diff shows what changed)."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@cache
def _validator(event: str) -> Any:
    from jsonschema import Draft7Validator  # tests and CHECK_RESPONSES only: not a Lambda dependency
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    doc = document()
    base = doc["id"]
    registry: Registry[Any] = Registry().with_resource(base, Resource.from_contents(doc, default_specification=DRAFT7))
    return Draft7Validator({"$ref": f"{base}#/components/messages/{message_key(event)}/payload"}, registry=registry)


def check(event: str, data: Any) -> None:
    """Raise catalog.UnknownEvent, or jsonschema.ValidationError when {event, data} is not in the document."""
    if event not in catalog.EVENTS:
        raise catalog.UnknownEvent(f"{event!r} is not an event of the WebSocket contract")
    # As it travels: through JSON (the outbox stores the data as JSON text, default=str).
    wire = json.loads(json.dumps({"event": event, "data": data}, default=str))
    _validator(event).validate(wire)


DOCS_PATH = "docs/asyncapi.json"


def main() -> None:
    """`make asyncapi`: write docs/asyncapi.json (a test fails while it differs from the generated one)."""
    with open(DOCS_PATH, "w", encoding="utf-8") as out:
        out.write(text())


if __name__ == "__main__":
    main()
