"""JSON Schema (2020-12) documents of what a factory sends and receives, generated from the models
that validate it (GET /schemas/..., docs/FACTORY.md), so a factory in another language can check a
batch before it sends it and an event when it gets one.

  /schemas/patch-batch.json        PatchBatch, the body of POST /api/patches/apply (validation mode)
  /schemas/patch-events.json       PatchEventsReport, the body of POST /api/patches/events
  /schemas/patch-event.json        PatchEvent, one stored patch event (GET /api/patches/logs items)
  /schemas/events/{event}.json     one WebSocket message `{"event", "data"}` (`patch.applied.json`
                                   for patch:applied): the AsyncAPI document's payload schema of
                                   that event, with the component schemas it uses under `$defs`

Request bodies are documented in their canonical camelCase (the API also accepts the snake_case
names of the original plans; the schemas do not list them) and are closed (`additionalProperties:
false`), as the API refuses unknown fields.
"""
from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import BaseModel

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "urn:agent-fleet-control-plane:schemas:"
EVENT_SUFFIX = ".json"


def _model(name: str) -> type[BaseModel]:
    from chalicelib.patches import models

    model: type[BaseModel] = getattr(models, name)
    return model


# document name -> (model, mode, title)
DOCUMENTS: dict[str, tuple[str, str, str]] = {
    "patch-batch.json": ("PatchBatch", "validation", "A patch batch (POST /api/patches/apply)"),
    "patch-events.json": ("PatchEventsReport", "validation",
                          "A batch applied outside the control plane (POST /api/patches/events)"),
    "patch-event.json": ("PatchEvent", "serialization", "One stored patch event"),
}


def _dialect(schema: dict[str, Any], name: str, title: str) -> dict[str, Any]:
    return {"$schema": DIALECT, "$id": ID_BASE + name, **schema, "title": title}


@cache
def model_document(name: str) -> dict[str, Any] | None:
    """The schema named `name` (a key of DOCUMENTS), None when there is none."""
    entry = DOCUMENTS.get(name)
    if entry is None:
        return None
    model_name, mode, title = entry
    schema = _model(model_name).model_json_schema(by_alias=True, mode=mode)  # type: ignore[arg-type]
    return _dialect(schema, name, title)


def event_file(event: str) -> str:
    """"patch:applied" -> "patch.applied.json" (a path segment without a colon)."""
    return event.replace(":", ".") + EVENT_SUFFIX


@cache
def event_document(file: str) -> dict[str, Any] | None:
    """The schema of the WebSocket message whose file name is `file`, None for no such event."""
    from chalicelib.events import asyncapi, catalog

    events = {event_file(e): e for e in catalog.EVENTS}
    event = events.get(file)
    if event is None:
        return None
    doc = asyncapi.document()
    payload = doc["components"]["messages"][asyncapi.message_key(event)]["payload"]
    components = doc["components"]["schemas"]
    # Only the component schemas the payload reaches, under $defs (2020-12), refs rewritten to them.
    needed: dict[str, Any] = {}
    pending = [payload]
    while pending:
        text = json.dumps(pending.pop())
        for name in components:
            if f'"#/components/schemas/{name}"' in text and name not in needed:
                needed[name] = components[name]
                pending.append(components[name])
    rewritten = json.loads(json.dumps({**payload, "$defs": needed}).replace("#/components/schemas/", "#/$defs/"))
    return _dialect(rewritten, f"events:{file}", f"The WebSocket message {event}: {catalog.SUMMARIES[event]}")


def index() -> dict[str, Any]:
    """Every published schema's path (GET /schemas)."""
    from chalicelib.events import catalog

    # agent-config.json is served by fleetconfig (its document lives in the pure fleet_config package)
    return {"schemas": [f"/schemas/{name}" for name in DOCUMENTS] + ["/schemas/agent-config.json"]
            + [f"/schemas/events/{event_file(e)}" for e in catalog.EVENTS]}
