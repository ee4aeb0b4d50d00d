"""Every WebSocket event a test sees is checked against the published AsyncAPI document.

Reads docs/asyncapi.json (tests/unit/test_asyncapi.py keeps it equal to what the
app generates) and validates a whole message, `{"event": name, "data": {...}}`,
with a generic JSON Schema validator, as any client of the document would: no
app import, so the e2e client stays a real outside client. An event the
document does not name fails too.
"""
from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


class EventNotInContract(AssertionError):
    pass


@cache
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


@cache
def _validators() -> dict[str, Draft7Validator]:
    doc = document()
    base = doc["id"]
    registry = Registry().with_resource(base, Resource.from_contents(doc, default_specification=DRAFT7))
    out = {}
    for key, message in doc["components"]["messages"].items():
        if key == "ping":  # a client action, not an event
            continue
        out[message["name"]] = Draft7Validator({"$ref": f"{base}#/components/messages/{key}/payload"},
                                               registry=registry)
    return out


def check_message(message: Any) -> None:
    """Raise EventNotInContract when `message` (a parsed frame) is not an event of the document."""
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        raise EventNotInContract(f"not an event frame: {str(message)[:300]}")
    validator = _validators().get(message["event"])
    if validator is None:
        raise EventNotInContract(f"{message['event']!r} is not an event of docs/asyncapi.json")
    if os.environ.get("ASYNCAPI_SEEN_LOG"):  # which events a run really saw (coverage of the contract)
        with open(os.environ["ASYNCAPI_SEEN_LOG"], "a", encoding="utf-8") as seen:
            seen.write(message["event"] + "\n")
    errors = sorted(validator.iter_errors(message), key=lambda e: list(e.absolute_path))
    if errors:
        where = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(frame)'}: {e.message[:300]}"
                          for e in errors[:5])
        raise EventNotInContract(f"{message['event']} does not match docs/asyncapi.json: {where}\n"
                                 f"message: {json.dumps(message)[:2000]}")


def check_event(event: str, data: Any) -> None:
    check_message({"event": event, "data": data})


def check_frame(frame: str | bytes) -> None:
    """A received text frame; a frame that is not JSON is not an event and fails too."""
    check_message(json.loads(frame))
