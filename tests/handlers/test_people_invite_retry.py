"""POST /users retried after an invite stopped between Cognito and the app (chalicelib/users/service.py,
`_adopt`; docs/SECURITY.md, "Identities").

The failure is injected at the AWS boundary: a botocore event handler on the app's own client makes one
request answer InternalServerError (as DynamoDB or Cognito would, its retries spent), before it is sent.
Tokens are real: moto's Cognito signs them (InitiateAuth), the app verifies them against the pool's JWKS
served over HTTP by a moto server sharing this process's state.
"""
from __future__ import annotations

import contextlib
import os
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.core import tokens
from chalicelib.core.config import settings

OIDC_VARS = ("OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL")
PASSWORD = "Correct-Horse-42"


def _use(**values):
    for name in OIDC_VARS:
        if values.get(name) is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = values[name]
    settings.cache_clear()
    tokens.reset()


@pytest.fixture
def moto_jwks(aws):
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


@contextlib.contextmanager
def fails_once(service: str, operation: str, matches=lambda params: True):
    """The app's `service` client answers the first matching `operation` with InternalServerError."""
    from chalicelib.aws import clients

    client = clients.client(service)
    event = f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    failed: list[dict] = []

    def fail(params, **kwargs):
        if not failed and matches(params):
            failed.append(params)
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"},
                               "ResponseMetadata": {"HTTPStatusCode": 500}}, operation)

    client.meta.events.register(event, fail)
    try:
        yield failed
    finally:
        client.meta.events.unregister(event, fail)


def _writes_a_person(params) -> bool:
    return any(item.get("Put", {}).get("Item", {}).get("type") == {"S": "user"} for item in params.get("TransactItems", []))


def the_person_commit_fails():
    """The commit of the person's item and its audit event (one TransactWriteItems) fails once."""
    return fails_once("dynamodb", "TransactWriteItems", _writes_a_person)


def sign_in(aws, email):
    idp = boto3.client("cognito-idp")
    idp.admin_set_user_password(UserPoolId=aws["UserPoolId"], Username=email, Password=PASSWORD, Permanent=True)
    answer = idp.initiate_auth(ClientId=aws["UserPoolClientId"], AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD})
    return answer["AuthenticationResult"]["AccessToken"]


def pool_groups(aws, email):
    idp = boto3.client("cognito-idp")
    return sorted(g["GroupName"] for g in idp.admin_list_groups_for_user(UserPoolId=aws["UserPoolId"],
                                                                         Username=email)["Groups"])


def listed(http, org, email):
    return [u for u in http.get("/users", org["adminKey"]).json["items"] if u["email"] == email]


def invited_audit(org_id, user_id):
    from chalicelib.aws import dynamo

    page = dynamo.query(settings().main_table, "PK = :pk", {":pk": f"ORG#{org_id}#AUDIT"})
    return [i for i in page.items if i.get("entityType") == "user" and i.get("entityId") == user_id]


def test_a_retry_adopts_the_pool_user_an_interrupted_invite_left_and_the_person_works(http, org, aws, moto_jwks):
    email = f"ines-{time.time_ns()}@example.com"
    with the_person_commit_fails() as failed:
        first = http.post("/users", org["adminKey"], {"email": email, "scope": "operator"})
    assert failed and first.status == 500, first.json
    # Cognito has the person, the app does not: they sign in and are refused on every call.
    sub = {a["Name"]: a["Value"] for a in boto3.client("cognito-idp").admin_get_user(
        UserPoolId=aws["UserPoolId"], Username=email)["UserAttributes"]}["sub"]
    assert pool_groups(aws, email) == [f"org:{org['orgId']}:operator"] and listed(http, org, email) == []
    early_token = sign_in(aws, email)
    refused = http.get("/agents", early_token)
    assert refused.status == 401 and "unknown person" in refused.json["error"]["message"]

    retry = http.post("/users", org["adminKey"], {"email": email, "scope": "operator"})
    assert retry.status == 201, retry.json
    assert retry.json["userId"] == sub and retry.json["email"] == email and retry.json["scope"] == "operator"
    assert [u["userId"] for u in listed(http, org, email)] == [sub]
    assert pool_groups(aws, email) == [f"org:{org['orgId']}:operator"]
    for token in (early_token, sign_in(aws, email)):  # the token from before works now, and a new one
        assert http.get("/agents", token).status == 200
        assert http.get("/keys", token).status == 403  # operator, from the pool's group
    [audit] = invited_audit(org["orgId"], sub)
    assert audit["action"] == "invited" and audit["details"]["adoptedPoolUser"] is True

    again = http.post("/users", org["adminKey"], {"email": email, "scope": "operator"})
    assert again.status == 409 and again.json["error"]["details"] == [{"field": "email", "message": "taken"}]


def test_an_invite_stopped_before_the_group_is_adopted_into_the_group_the_retry_asks(http, org, aws, moto_jwks):
    email = f"jo-{time.time_ns()}@example.com"
    with fails_once("cognito-idp", "AdminAddUserToGroup") as failed:
        assert http.post("/users", org["adminKey"], {"email": email, "scope": "operator"}).status == 500
    assert failed and pool_groups(aws, email) == []
    retry = http.post("/users", org["adminKey"], {"email": email, "scope": "admin"})
    assert retry.status == 201 and retry.json["scope"] == "admin", retry.json
    assert pool_groups(aws, email) == [f"org:{org['orgId']}:admin"]
    assert http.get("/keys", sign_in(aws, email)).status == 200  # an admin


def test_a_retry_with_another_scope_leaves_the_person_in_that_scopes_group_only(http, org, aws, moto_jwks):
    email = f"kim-{time.time_ns()}@example.com"
    with the_person_commit_fails():
        assert http.post("/users", org["adminKey"], {"email": email, "scope": "admin"}).status == 500
    retry = http.post("/users", org["adminKey"], {"email": email, "scope": "operator"})
    assert retry.status == 201 and retry.json["scope"] == "operator"
    assert pool_groups(aws, email) == [f"org:{org['orgId']}:operator"]
    assert http.get("/keys", sign_in(aws, email)).status == 403  # an operator, as the item says


def test_a_pool_user_of_another_organization_is_never_adopted(http, org, root, aws):
    other = http.post("/orgs", root["adminApiKey"], {"name": "another tenant"})
    assert other.status == 201
    email = f"lee-{time.time_ns()}@example.com"
    with the_person_commit_fails():
        assert http.post("/users", org["adminKey"], {"email": email, "scope": "operator"}).status == 500
    taken = http.post("/users", other.json["adminKey"], {"email": email, "scope": "admin"})
    assert taken.status == 409 and taken.json["error"]["code"] == "CONFLICT"
    assert pool_groups(aws, email) == [f"org:{org['orgId']}:operator"]  # untouched
    assert listed(http, other.json, email) == [] and listed(http, org, email) == []
    # Its own organization's retry adopts it.
    assert http.post("/users", org["adminKey"], {"email": email, "scope": "operator"}).status == 201
    # Once the app has the person, every organization's invite of that email is 409.
    assert http.post("/users", other.json["adminKey"], {"email": email, "scope": "admin"}).status == 409
