"""The contract's conventions on every route: validation, 413, idempotency, health, OpenAPI."""
from tests.conftest import seed_agent
import dataclasses
import json

import pytest

from chalicelib.core import config


def test_validation_error_names_the_field(http, org):
    r = http.post("/keys", org["adminKey"], {"name": "x", "scope": "superuser"})
    assert r.status == 400
    assert r.json["error"]["code"] == "VALIDATION_ERROR"
    assert r.json["error"]["details"][0]["field"] == "scope"
    r = http.post("/keys", org["adminKey"], {"scope": "operator"})
    assert r.json["error"]["details"][0]["field"] == "name"
    r = http.post("/keys", org["adminKey"], {"name": "x", "scope": "operator", "surprise": 1})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "surprise"


def test_snake_case_inputs_are_accepted(http, org):
    seed_agent(org["orgId"], "agent-7")
    r = http.post("/keys", org["adminKey"], {"name": "a", "scope": "agent", "agent_id": "agent-7"})
    assert r.status == 201 and r.json["agentId"] == "agent-7"


def test_invalid_json_and_wrong_types_are_400_never_500(http, org):
    for raw in (b"{", b"[1,2]", b"null", b"\xff\xfe", b'"text"', b'{"name": 5, "scope": []}'):
        r = http.post("/keys", org["adminKey"], raw_body=raw)
        assert r.status == 400, (raw, r.status, r.json)
        assert r.json["error"]["code"] == "VALIDATION_ERROR"


def test_query_validation(http, org):
    for q in ("limit=0", "limit=101", "limit=abc"):
        r = http.get(f"/keys?{q}", org["adminKey"])
        assert r.status == 400 and r.json["error"]["details"][0]["field"] == "limit"


def test_body_over_256_kib_is_413(http, org):
    big = {"name": "x" * (256 * 1024), "scope": "operator"}
    r = http.post("/keys", org["adminKey"], big)
    assert r.status == 413 and r.json["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_wrong_content_type_and_method_keep_the_error_shape(http, org):
    r = http.post("/keys", org["adminKey"], {"name": "x", "scope": "operator"},
                  headers={"content-type": "text/plain"})
    assert r.status == 415 and r.json["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    r = http.call("PATCH", "/keys", org["adminKey"])
    assert r.status == 405 and r.json["error"]["code"] == "METHOD_NOT_ALLOWED"
    # Both after auth: without a valid key the route tells nothing but 401.
    r = http.post("/keys", None, {"name": "x"}, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status == 401 and r.json["error"]["code"] == "UNAUTHORIZED"
    assert http.call("PATCH", "/keys", "cpk.01ARZ3NDEKTSV4RRFFQ69G5FAV.forged").status == 401
    # A public route has no key to check.
    r = http.call("DELETE", "/health")
    assert r.status == 405 and r.json["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_idempotent_replay_returns_first_response_and_has_no_second_effect(http, org):
    admin = org["adminKey"]
    body = {"name": "once", "scope": "operator"}
    first = http.post("/keys", admin, body, headers={"Idempotency-Key": "k-1"})
    again = http.post("/keys", admin, body, headers={"Idempotency-Key": "k-1"})
    assert first.status == again.status == 201
    # A secret is shown once: the replay is the same body without it.
    assert "apiKey" in first.json and "apiKey" not in again.json
    assert again.json == {k: v for k, v in first.json.items() if k != "apiKey"}
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    names = [k["name"] for k in http.get("/keys", admin).json["items"]]
    assert names.count("once") == 1
    # the same key with another body
    other = http.post("/keys", admin, {"name": "twice", "scope": "operator"}, headers={"Idempotency-Key": "k-1"})
    assert other.status == 409 and other.json["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # the same body with key order/whitespace changed is the same body
    raw = json.dumps({"scope": "operator", "name": "once"}, indent=2).encode()
    assert http.post("/keys", admin, raw_body=raw, headers={"Idempotency-Key": "k-1"}).status == 201


def test_idempotency_keys_are_scoped_per_api_key_and_failures_are_not_stored(http, org, root):
    other = http.post("/orgs", root["adminApiKey"], {"name": "o2"}).json
    second_admin = http.post("/keys", org["adminKey"], {"name": "admin 2", "scope": "admin"}).json["apiKey"]
    body = {"name": "scoped", "scope": "operator"}
    a = http.post("/keys", org["adminKey"], body, headers={"Idempotency-Key": "shared"})
    b = http.post("/keys", other["adminKey"], body, headers={"Idempotency-Key": "shared"})
    c = http.post("/keys", second_admin, body, headers={"Idempotency-Key": "shared"})  # same org, other key
    assert a.status == b.status == c.status == 201
    assert len({a.json["keyId"], b.json["keyId"], c.json["keyId"]}) == 3
    assert "Idempotent-Replayed" not in b.headers and "Idempotent-Replayed" not in c.headers
    bad = {"name": "a", "scope": "agent"}  # 400: agentId missing
    assert http.post("/keys", org["adminKey"], bad, headers={"Idempotency-Key": "retry-me"}).status == 400
    fixed = {"name": "a", "scope": "agent", "agentId": seed_agent(org["orgId"], "a-1")}
    # a failed request is not stored, so the same key with a corrected body is a new request...
    r = http.post("/keys", org["adminKey"], fixed, headers={"Idempotency-Key": "retry-me"})
    assert r.status == 201 and "Idempotent-Replayed" not in r.headers


def test_health_is_public_and_503_when_a_dependency_is_down(http, monkeypatch):
    assert http.get("/health").status == 200
    broken = dataclasses.replace(config.settings(), jobs_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    monkeypatch.setattr(config, "settings", lambda: broken)
    import chalicelib.system.store as system_store
    monkeypatch.setattr(system_store, "settings", lambda: broken)
    r = http.get("/health")
    assert r.status == 503
    assert r.json["checks"]["sqs"].startswith("unavailable") and r.json["checks"]["dynamodb"] == "ok"
    assert r.json["error"]["code"] == "UNAVAILABLE"


def test_openapi_document_describes_every_route_from_the_models(http, app_module):
    doc = http.get("/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    routes = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    registered = {(path, method) for path, methods in app_module.app.routes.items() for method in methods}
    # The console's page and static files are not API resources (docs/API.md, "Console"); its config is.
    from chalicelib.console.routes import STATIC_ROUTES

    static = {(path, "GET") for path in STATIC_ROUTES}
    assert static <= registered and ("/console/config.json", "GET") in routes
    assert routes == registered - static
    create_key = doc["paths"]["/keys"]["post"]
    ref = create_key["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.split("/")[-1]]
    assert schema["properties"]["scope"]["enum"] == ["admin", "operator", "agent"]
    assert "agentId" in schema["properties"]
    assert "401" in create_key["responses"] and "403" in create_key["responses"]
    assert "security" not in doc["paths"]["/health"]["get"]


def test_unexpected_failure_is_500_without_a_trace(http, org, monkeypatch):
    from chalicelib.orgs import store

    def boom(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store, "list_keys", boom)
    r = http.get("/keys", org["adminKey"])
    assert r.status == 500
    assert r.json == {"error": {"code": "INTERNAL", "message": "internal error"}}


def test_hostile_json_is_400(http, org):
    deep = b"[" * 100_000 + b"]" * 100_000
    for raw, field in ((deep, "body"), (b'{"name": NaN, "scope": "operator"}', "name"),
                       (b'{"name": "x", "scope": "operator", "n": Infinity}', "n")):
        r = http.post("/keys", org["adminKey"], raw_body=raw)
        assert r.status == 400, (raw[:40], r.status)
        assert r.json["error"]["details"][0]["field"] == field


def test_a_page_model_always_says_next_token(http, org):
    from chalicelib.core.api import _dump
    from chalicelib.orgs.models import KeyList

    assert _dump(KeyList(items=[], next_token=None)) == {"items": [], "nextToken": None}
    r = http.get("/keys?limit=100", org["adminKey"])
    assert "nextToken" in r.json and r.json["nextToken"] is None


def test_contention_that_outlasts_retries_is_503_with_retry_after(http, org, monkeypatch):
    from chalicelib.aws import dynamo
    from chalicelib.orgs import store

    def busy(*a, **k):
        raise dynamo.TransactionConflict("busy")

    monkeypatch.setattr(store, "list_keys", busy)
    r = http.get("/keys", org["adminKey"])
    assert r.status == 503 and r.json["error"]["code"] == "UNAVAILABLE"
    assert r.headers.get("Retry-After") == "1"


@pytest.mark.parametrize("content_type", ["application/json\x00", "application/\x00json", "\x00",
                                          "application/json; charset=utf-8\x00", "application/json\x1b[31m"])
def test_a_control_character_in_content_type_is_400_naming_it_and_creates_nothing(http, org, content_type):
    """As the local stack's HTTP parser answers it (devstack/http_protocol.py): a malformed header,
    400 before any route rule, never a 201 (the NUL after `;` used to pass) or a 415 echoing the NUL."""
    before = len(http.get("/keys", org["adminKey"]).json["items"])
    r = http.post("/keys", org["adminKey"], {"name": "k", "scope": "operator"}, headers={"content-type": content_type})
    assert r.status == 400, r.json
    assert r.json["error"]["code"] == "VALIDATION_ERROR"
    assert r.json["error"]["details"] == [{"field": "Content-Type", "message": r.json["error"]["details"][0]["message"]}]
    assert "\x00" not in json.dumps(r.json, ensure_ascii=False) and "\x1b" not in json.dumps(r.json, ensure_ascii=False)
    assert len(http.get("/keys", org["adminKey"]).json["items"]) == before


def test_a_415_does_not_echo_an_unbounded_content_type(http, org):
    r = http.post("/keys", org["adminKey"], {"name": "k"}, headers={"content-type": "text/" + "a" * 5000})
    assert r.status == 415 and r.json["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert len(r.json["error"]["message"]) <= 300
