"""People: OpenID Connect tokens beside API keys, POST/GET/DELETE /users, keys' lastUsedAt (issue 21).

Tokens come from our own issuer (RSA keys behind a real local JWKS endpoint, tests/support/people.py)
and from moto's Cognito (InitiateAuth USER_PASSWORD_AUTH, verified against the pool's JWKS served
over real HTTP by a moto server sharing this process's state).
"""
from __future__ import annotations

import os
import time

import boto3
import pytest

from chalicelib.aws import dynamo
from chalicelib.core import tokens
from chalicelib.core.config import settings
from tests.support.people import Issuer

OIDC_VARS = ("OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL")


def _use(**values):
    for name in OIDC_VARS:
        if values.get(name) is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = values[name]
    settings.cache_clear()
    tokens.reset()


@pytest.fixture(scope="module")
def issuer(aws):
    saved = {k: os.environ.get(k) for k in OIDC_VARS}
    found = Issuer()
    _use(OIDC_ISSUER=found.issuer, OIDC_AUDIENCE=found.audience, OIDC_JWKS_URL=found.jwks_url)
    yield found
    found.close()
    _use(**saved)


@pytest.fixture
def person(http, org, issuer):
    """An admin person of `org` (invited through POST /users) and a helper for their tokens."""
    r = http.post("/users", org["adminKey"], {"email": f"ada-{time.time_ns()}@example.com", "scope": "admin"})
    assert r.status == 201, r.json
    return r.json


def group(org, scope="admin"):
    return f"org:{org['orgId']}:{scope}"


def denials_of(org_id):
    page = dynamo.query(settings().main_table, "PK = :pk", {":pk": f"ORG#{org_id}#AUDIT"})
    return [i for i in page.items if i["action"] == "denied"]


def denial_counts():
    """The per-source, per-minute denial counters of denials with no organization (core/audit.py), this minute
    and the one before."""
    from chalicelib.core import clock

    found = {}
    for at in (clock.now() - 60, clock.now()):
        minute = clock.iso(at)[:16]
        for i in dynamo.query(settings().main_table, "PK = :pk", {":pk": f"DENIALS#{minute}"}).items:
            found[(i["PK"], i["SK"])] = (int(i["count"]), i["lastReason"])
    return found


def keys_of(http, org):
    return sorted(k["keyId"] for k in http.get("/keys?limit=100", org["adminKey"]).json["items"])


# --- every bad token of the issue: a 4xx in the contract's shape, audited, nothing changed -------

BAD_TOKENS = {
    "wrong signature": (lambda i, sub, org: i.wrong_signature(sub, [group(org)]), 401, "bad token signature"),
    "alg none": (lambda i, sub, org: i.unsigned(sub, [group(org)]), 401, "algorithm not allowed"),
    "HS256 with the public key": (lambda i, sub, org: i.hs256_with_public_key(sub, [group(org)]), 401,
                                  "algorithm not allowed"),
    "expired": (lambda i, sub, org: i.token(sub, [group(org)], exp=int(time.time()) - 61), 401, "expired token"),
    "not yet valid": (lambda i, sub, org: i.token(sub, [group(org)], nbf=int(time.time()) + 120), 401,
                      "not yet valid"),
    "other audience": (lambda i, sub, org: i.token(sub, [group(org)], client_id="someone-else"), 401,
                       "another audience"),
    "other issuer": (lambda i, sub, org: i.token(sub, [group(org)], iss="https://evil.test/pool"), 401,
                     "another issuer"),
    "unknown kid": (lambda i, sub, org: i.token(sub, [group(org)], kid="nobody-knows"), 401, "unknown signing key"),
    "no group": (lambda i, sub, org: i.token(sub, []), 403, "no organization group"),
    "other org's group": (lambda i, sub, org: i.token(sub, ["org:01OTHERORG0000000000000000:admin"]), 403,
                          "another organization"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_every_bad_token_is_refused_in_the_contract_shape_audited_and_changes_nothing(http, org, person, issuer,
                                                                                       case):
    make, status, reason = BAD_TOKENS[case]
    token = make(issuer, person["userId"], org)
    before_keys, before_denials, before_counts = keys_of(http, org), denials_of(org["orgId"]), denial_counts()
    r = http.post("/keys", token, {"name": "should not exist", "scope": "admin"})
    assert r.status == status, (case, r.json)
    assert r.json["error"]["code"] == {401: "UNAUTHORIZED", 403: "FORBIDDEN"}[status]
    assert set(r.json["error"]) <= {"code", "message", "details"}
    assert reason in r.json["error"]["message"]
    assert keys_of(http, org) == before_keys  # nothing changed
    if status == 403:  # the signature held: the person is known, the denial is in their org's trail
        new = [d for d in denials_of(org["orgId"]) if d not in before_denials]
        assert len(new) == 1
        assert new[0]["actor"] == f"user:{person['userId']}"
        assert new[0]["details"]["email"] == person["email"] and new[0]["details"]["status"] == 403
        assert reason in new[0]["details"]["reason"]
    else:  # an untrusted token names nobody: counted per source and minute, with the reason
        assert denials_of(org["orgId"]) == before_denials
        after = denial_counts()
        bumped = [v for k, v in after.items() if before_counts.get(k, (0, None))[0] < v[0]]
        assert len(bumped) == 1 and reason in bumped[0][1]


def test_a_token_with_a_skew_inside_60_seconds_is_accepted_outside_refused(http, org, person, issuer):
    now = int(time.time())
    sub = person["userId"]
    assert http.get("/keys", issuer.token(sub, [group(org)], exp=now - 30)).status == 200
    assert http.get("/keys", issuer.token(sub, [group(org)], nbf=now + 30)).status == 200
    assert http.get("/keys", issuer.token(sub, [group(org)], exp=now - 90)).status == 401
    assert http.get("/keys", issuer.token(sub, [group(org)], token_use="refresh")).status == 401


def test_an_id_token_carries_aud_and_is_accepted_too(http, org, person, issuer):
    token = issuer.token(person["userId"], [group(org)], token_use="id", email=person["email"])
    assert http.get("/keys", token).status == 200
    wrong = issuer.token(person["userId"], [group(org)], token_use="id", aud="someone-else")
    assert http.get("/keys", wrong).status == 401


def test_a_person_acts_in_their_org_with_their_groups_scope_and_the_audit_names_them(http, org, person, issuer):
    admin = issuer.token(person["userId"], [group(org, "admin")])
    r = http.post("/keys", admin, {"name": "made by a person", "scope": "operator"})
    assert r.status == 201, r.json
    item = dynamo.query(settings().main_table, "GSI1PK = :pk",
                        {":pk": f"ORG#{org['orgId']}#AUDIT#key#{r.json['keyId']}"}, index="GSI1").items[0]
    assert item["actor"] == f"user:{person['userId']}"
    assert item["details"]["actorEmail"] == person["email"]
    # the scope is the group's, whatever the person's item says
    operator = issuer.token(person["userId"], [group(org, "operator")])
    assert http.get("/keys", operator).status == 403
    assert http.get("/agents", operator).status == 200
    # a claim the person could set is never read for the organization
    spoof = issuer.token(person["userId"], [group(org, "operator")], **{"custom:orgId": "01SOMEONEELSE"})
    assert http.get("/agents", spoof).status == 200


def test_another_orgs_resources_stay_404_for_a_person(http, org, root, person, issuer):
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    theirs = http.post("/users", other["adminKey"], {"email": f"bob-{time.time_ns()}@example.com",
                                                     "scope": "operator"}).json
    token = issuer.token(person["userId"], [group(org)])
    assert http.delete(f"/users/{theirs['userId']}", token).status == 404
    listed = http.get("/users", token).json["items"]
    assert person["userId"] in [u["userId"] for u in listed]
    assert theirs["userId"] not in [u["userId"] for u in listed]


def test_the_jwks_is_fetched_once_and_an_unknown_kid_refetches_at_most_once_a_minute(http, org, person, issuer,
                                                                                     monkeypatch):
    tokens.reset()
    before = issuer.requests
    for _ in range(5):
        assert http.get("/keys", issuer.token(person["userId"], [group(org)])).status == 200
    assert issuer.requests - before == 1
    for _ in range(5):  # within the minute of the last fetch: no refetch at all
        assert http.get("/keys", issuer.token(person["userId"], [group(org)], kid="made-up")).status == 401
    assert issuer.requests - before == 1
    later = time.monotonic() + tokens.JWKS_REFRESH_SECONDS
    monkeypatch.setattr(tokens.key_cache(), "_clock", lambda: later)
    for _ in range(5):  # a minute on: one refetch for the first unknown kid, none for the rest
        assert http.get("/keys", issuer.token(person["userId"], [group(org)], kid="made-up")).status == 401
    assert issuer.requests - before == 2
    assert http.get("/keys", issuer.token(person["userId"], [group(org)])).status == 200
    assert issuer.requests - before == 2


def test_a_rotated_key_is_picked_up_by_the_refetch(http, org, person, issuer, monkeypatch):
    from joserfc.jwk import RSAKey

    tokens.reset()
    assert http.get("/keys", issuer.token(person["userId"], [group(org)])).status == 200
    new = RSAKey.generate_key(2048, parameters={"kid": "key-2", "use": "sig"})
    issuer.published = [issuer.key, new]
    cache = tokens.key_cache()
    monkeypatch.setattr(cache, "_clock", lambda: time.monotonic() + tokens.JWKS_REFRESH_SECONDS)
    assert http.get("/keys", issuer.token(person["userId"], [group(org)], key=new, kid="key-2")).status == 200
    issuer.published = [issuer.key]


def test_api_keys_still_work_beside_tokens_and_a_jwt_never_reaches_the_key_path(http, org, person, issuer):
    assert http.get("/keys", org["adminKey"]).status == 200
    r = http.get("/keys", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
    assert r.status == 401 and "API key" not in r.json["error"]["message"].split(":")[0]


# --- /users ----------------------------------------------------------------------------------------

def test_post_users_invites_into_the_pool_and_its_group(http, org, issuer, aws):
    email = f"Grace-{time.time_ns()}@Example.com"
    r = http.post("/users", org["adminKey"], {"email": email, "scope": "operator"})
    assert r.status == 201, r.json
    assert set(r.json) >= {"userId", "email", "scope", "status"}
    assert r.json["email"] == email.lower() and r.json["scope"] == "operator" and r.json["status"] == "active"
    idp = boto3.client("cognito-idp")
    pool = aws["UserPoolId"]
    groups = idp.admin_list_groups_for_user(UserPoolId=pool, Username=email.lower())["Groups"]
    assert [g["GroupName"] for g in groups] == [f"org:{org['orgId']}:operator"]
    # the same email again: 409, nothing new
    again = http.post("/users", org["adminKey"], {"email": email.lower(), "scope": "admin"})
    assert again.status == 409 and again.json["error"]["code"] == "CONFLICT"
    assert len([u for u in http.get("/users", org["adminKey"]).json["items"] if u["email"] == email.lower()]) == 1


@pytest.mark.parametrize("body,field", [({"email": "not-an-email", "scope": "admin"}, "email"),
                                        ({"email": "a@example.com", "scope": "agent"}, "scope"),
                                        ({"email": "a@example.com"}, "scope"),
                                        ({"email": "a@example.com", "scope": "admin", "org": "x"}, "org")])
def test_post_users_validates(http, org, body, field):
    r = http.post("/users", org["adminKey"], body)
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == field


def test_an_email_the_pool_refuses_is_400_not_500(http, org):
    r = http.post("/users", org["adminKey"], {"email": "ad!a@example.c0m", "scope": "operator"})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "email", r.json


def test_only_admins_manage_people(http, org):
    from tests.conftest import key_of

    operator = key_of(http, org, "operator")
    assert http.post("/users", operator, {"email": "x@example.com", "scope": "operator"}).status == 403
    assert http.get("/users", operator).status == 403
    assert http.delete("/users/nobody", operator).status == 403


def test_a_disabled_person_is_refused_on_the_next_call_and_delete_is_idempotent(http, org, person, issuer, aws):
    token = issuer.token(person["userId"], [group(org)])
    assert http.get("/users", token).status == 200
    assert http.delete(f"/users/{person['userId']}", org["adminKey"]).status == 204
    r = http.get("/users", token)
    assert r.status == 401 and "disabled" in r.json["error"]["message"]
    assert http.delete(f"/users/{person['userId']}", org["adminKey"]).status == 204
    shown = {u["userId"]: u for u in http.get("/users", org["adminKey"]).json["items"]}[person["userId"]]
    assert shown["status"] == "disabled" and shown["disabledAt"]
    user = boto3.client("cognito-idp").admin_get_user(UserPoolId=aws["UserPoolId"], Username=person["email"])
    assert user["Enabled"] is False
    denied = [d for d in denials_of(org["orgId"]) if d["details"]["reason"] == "disabled person"]
    assert denied and denied[-1]["actor"] == f"user:{person['userId']}"
    assert http.delete("/users/01NOSUCHUSER000000000000000", org["adminKey"]).status == 404


def test_a_person_the_app_never_invited_is_401(http, org, issuer):
    r = http.get("/keys", issuer.token("never-invited-sub", [group(org)]))
    assert r.status == 401 and "unknown person" in r.json["error"]["message"]


# --- real tokens from moto's Cognito -----------------------------------------------------------------

@pytest.fixture
def moto_jwks(aws):
    """The pool's own issuer and client as the app's OIDC settings, its JWKS over real HTTP (a moto server
    sharing this process's state)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in OIDC_VARS}
    _use(OIDC_ISSUER=aws["OidcIssuer"], OIDC_AUDIENCE=aws["UserPoolClientId"],
         OIDC_JWKS_URL=f"http://{host}:{port}/{aws['UserPoolId']}/.well-known/jwks.json")
    yield
    _use(**saved)
    server.stop()


def test_real_cognito_tokens_sign_in_act_and_stop_when_disabled(http, org, aws, moto_jwks):
    email = f"lin-{time.time_ns()}@example.com"
    created = http.post("/users", org["adminKey"], {"email": email, "scope": "operator"}).json
    idp = boto3.client("cognito-idp")
    idp.admin_set_user_password(UserPoolId=aws["UserPoolId"], Username=email, Password="Correct-Horse-42",
                                Permanent=True)
    answer = idp.initiate_auth(ClientId=aws["UserPoolClientId"], AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": email, "PASSWORD": "Correct-Horse-42"})
    result = answer["AuthenticationResult"]
    for token in (result["AccessToken"], result["IdToken"]):
        assert http.get("/agents", token).status == 200
        assert http.get("/keys", token).status == 403  # operator, from the pool's group
    refreshed = idp.initiate_auth(ClientId=aws["UserPoolClientId"], AuthFlow="REFRESH_TOKEN_AUTH",
                                  AuthParameters={"REFRESH_TOKEN": result["RefreshToken"]})["AuthenticationResult"]
    assert http.get("/agents", refreshed["AccessToken"]).status == 200
    assert http.delete(f"/users/{created['userId']}", org["adminKey"]).status == 204
    assert http.get("/agents", result["AccessToken"]).status == 401
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.initiate_auth(ClientId=aws["UserPoolClientId"], AuthFlow="USER_PASSWORD_AUTH",
                          AuthParameters={"USERNAME": email, "PASSWORD": "Correct-Horse-42"})


# --- keys' lastUsedAt ---------------------------------------------------------------------------------

def test_keys_show_last_used_at_written_at_most_once_a_minute(http, org, monkeypatch):
    from chalicelib.core import clock
    from tests.conftest import key_of

    key = key_of(http, org, "operator")
    key_id = key.split(".")[1]

    def listed():
        return {k["keyId"]: k for k in http.get("/keys", org["adminKey"]).json["items"]}[key_id]

    assert listed()["lastUsedAt"] is None
    writes = []  # every UpdateItem sent for the key's lastUsedAt (landed or not)
    real_update = dynamo.update

    def counting(op, *args, **kwargs):
        if "lastUsedAt" in op.set and op.key == {"PK": f"KEY#{key_id}", "SK": "KEY"}:
            writes.append(op)
        return real_update(op, *args, **kwargs)

    monkeypatch.setattr(dynamo, "update", counting)
    for _ in range(5):
        assert http.get("/agents", key).status == 200
    assert len(writes) == 1
    first = listed()["lastUsedAt"]
    assert first is not None
    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start + 30)
    http.get("/agents", key)
    assert len(writes) == 1 and listed()["lastUsedAt"] == first
    monkeypatch.setattr(clock, "now", lambda: start + 61)
    http.get("/agents", key)
    assert len(writes) == 2 and listed()["lastUsedAt"] > first


# --- WebSocket with a token ------------------------------------------------------------------------------

def test_a_socket_opened_with_a_token_closes_when_the_token_expires(app_module, http, org, person, issuer,
                                                                    monkeypatch):
    from chalicelib.aws import websocket
    from chalicelib.core import clock
    from chalicelib.fanout import expiry, store
    from tests.handlers.test_fanout import ws_event

    closed = []
    monkeypatch.setattr(websocket, "close", lambda endpoint, cid: closed.append(cid) or True)
    exp = int(time.time()) + 120
    token = issuer.token(person["userId"], [group(org)], exp=exp)
    bad = issuer.unsigned(person["userId"], [group(org)])
    assert app_module.ws_connect(ws_event("$connect", "c-bad-token", bad), None)["statusCode"] == 401
    assert app_module.ws_connect(ws_event("$connect", "c-person", token), None)["statusCode"] == 200
    item = dynamo.get(settings().main_table, {"PK": "CONN#c-person", "SK": "CONN"})
    assert item["expiresAt"] == exp and item["ttl"] <= exp and item["keyId"] == f"user:{person['userId']}"
    expiry.sweep()
    assert closed == []  # not yet
    monkeypatch.setattr(clock, "now", lambda: exp + 1)
    assert expiry.sweep()["closed"] == 1
    assert closed == ["c-person"] and store.get("c-person") is None
    assert expiry.sweep()["closed"] == 0  # once


def test_disabling_a_person_closes_their_sockets(app_module, http, org, person, issuer, monkeypatch):
    from chalicelib.aws import websocket
    from tests.handlers.test_fanout import ws_event

    closed = []
    monkeypatch.setattr(websocket, "close", lambda endpoint, cid: closed.append(cid) or True)
    token = issuer.token(person["userId"], [group(org)])
    assert app_module.ws_connect(ws_event("$connect", "c-to-close", token), None)["statusCode"] == 200
    assert app_module.ws_connect(ws_event("$connect", "c-admin-key", org["adminKey"]), None)["statusCode"] == 200
    assert http.delete(f"/users/{person['userId']}", org["adminKey"]).status == 204
    assert closed == ["c-to-close"]
    assert app_module.ws_connect(ws_event("$connect", "c-again", token), None)["statusCode"] == 401


def test_a_wrong_method_or_media_type_answers_the_identity_check_first(http, org, person, issuer):
    """Chalice's own 405/415 come after auth (core/api.py `_after_auth`): a token with no group is its 403 there too."""
    no_group = issuer.token(person["userId"], [])
    r = http.call("PATCH", "/users", no_group)
    assert r.status == 403 and r.json["error"]["code"] == "FORBIDDEN"
    r = http.call("POST", "/users", issuer.unsigned(person["userId"], [group(org)]), headers={"content-type": "text/plain"},
                  raw_body=b"x")
    assert r.status == 401 and r.json["error"]["code"] == "UNAUTHORIZED"
    r = http.call("PATCH", "/users", issuer.token(person["userId"], [group(org)]))
    assert r.status == 405


def test_a_key_expiring_within_the_connection_cap_gets_an_expiry_marker_and_others_none(app_module, http, org):
    from datetime import datetime, timedelta, timezone

    from tests.handlers.test_fanout import ws_event

    soon = (datetime.now(timezone.utc) + timedelta(minutes=30)).isoformat()
    later = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
    short = http.post("/keys", org["adminKey"], {"name": "short", "scope": "operator", "expiresAt": soon}).json
    long = http.post("/keys", org["adminKey"], {"name": "long", "scope": "operator", "expiresAt": later}).json
    assert app_module.ws_connect(ws_event("$connect", "c-short-key", short["apiKey"]), None)["statusCode"] == 200
    assert app_module.ws_connect(ws_event("$connect", "c-long-key", long["apiKey"]), None)["statusCode"] == 200
    from chalicelib.fanout import store

    item = dynamo.get(settings().main_table, {"PK": "CONN#c-short-key", "SK": "CONN"})
    markers = store.expiring_in(store.expiry_minute(item["expiresAt"]))
    assert [m["SK"] for m in markers] == ["c-short-key"]
    assert "expiresAt" not in dynamo.get(settings().main_table, {"PK": "CONN#c-long-key", "SK": "CONN"})
