"""GET /asyncapi.json: the WebSocket's AsyncAPI document, served without a key like /openapi.json."""
from __future__ import annotations

import json

from chalicelib.events import asyncapi


def test_asyncapi_json_is_served_without_auth_and_is_the_generated_document(http):
    reply = http.get("/asyncapi.json")
    assert reply.status == 200, reply.json
    assert reply.json == json.loads(json.dumps(asyncapi.document()))
    assert reply.json["asyncapi"] == "3.0.0"


def test_openapi_lists_the_asyncapi_route_as_public(http):
    operation = http.get("/openapi.json").json["paths"]["/asyncapi.json"]["get"]
    assert "security" not in operation
