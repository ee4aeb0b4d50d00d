"""Issue 21, people, on the real local stack: real tokens from the embedded Cognito (InitiateAuth at the
stack's /_cognito/, as the console calls it), REST and /ws with a token, a disabled person's next call
401 and socket closed, a socket closed when its token expires.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devstack.testing import running_devstack
from tests.e2e.client import call, next_event, ws_connect

pytestmark = pytest.mark.e2e

ROOT_KEY = "people-e2e-root-key-0123456789"
ADMIN_EMAIL = "first.person@example.com"
ADMIN_PASSWORD = "First-Person-Password-1"


@pytest.fixture(scope="module")
def stack():
    with running_devstack(app_module="app", env={"ADMIN_API_KEY": ROOT_KEY, "ADMIN_EMAIL": ADMIN_EMAIL,
                                                 "ADMIN_PASSWORD": ADMIN_PASSWORD}) as running:
        yield running
    assert running.returncode == 0, running.log_tail()


@pytest.fixture(scope="module")
def oidc(stack):
    config = call(stack.url, "GET", "/console/config.json").json
    assert config["oidc"] is not None
    return config["oidc"]


def cognito(oidc, action: str, body: dict) -> tuple[int, dict]:
    """One Cognito API call as a browser makes it (no credentials), at the endpoint config.json names."""
    request = urllib.request.Request(oidc["endpoint"], data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"AWSCognitoIdentityProviderService.{action}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def sign_in(oidc, email: str, password: str) -> dict:
    status, answer = cognito(oidc, "InitiateAuth", {"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": oidc["clientId"],
                                                    "AuthParameters": {"USERNAME": email, "PASSWORD": password}})
    assert status == 200, answer
    return answer["AuthenticationResult"]


def invite(stack, admin_key: str, email: str, scope: str, password: str) -> dict:
    r = call(stack.url, "POST", "/users", admin_key, {"email": email, "scope": scope})
    assert r.status == 201, r.json
    stack.aws("cognito-idp").admin_set_user_password(UserPoolId=stack.environment["COGNITO_USER_POOL_ID"],
                                                     Username=email, Password=password, Permanent=True)
    return r.json


def closed_within(conn, seconds: float) -> None:
    with pytest.raises(ConnectionClosed):
        while True:
            conn.recv(timeout=seconds)


def test_the_first_person_signs_in_and_acts_as_a_root_admin(stack, oidc):
    tokens = sign_in(oidc, ADMIN_EMAIL, ADMIN_PASSWORD)
    people = call(stack.url, "GET", "/users", tokens["AccessToken"])
    assert people.status == 200 and [u["email"] for u in people.json["items"]] == [ADMIN_EMAIL]
    # a root admin person may create organizations, as the root admin key may
    made = call(stack.url, "POST", "/orgs", tokens["IdToken"], {"name": "by a person"})
    assert made.status == 201, made.json
    refreshed = cognito(oidc, "InitiateAuth", {"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": oidc["clientId"],
                                               "AuthParameters": {"REFRESH_TOKEN": tokens["RefreshToken"]}})
    assert refreshed[0] == 200 and call(stack.url, "GET", "/users",
                                        refreshed[1]["AuthenticationResult"]["AccessToken"]).status == 200
    assert cognito(oidc, "AdminCreateUser", {"UserPoolId": "x", "Username": "y"})[0] == 400  # admin API: not here


def test_a_person_works_in_their_org_and_a_disabled_one_is_401_with_the_socket_closed(stack, oidc):
    org = call(stack.url, "POST", "/orgs", ROOT_KEY, {"name": "people"}).json
    person = invite(stack, org["adminKey"], "op@example.com", "operator", "Operator-Password-1")
    token = sign_in(oidc, "op@example.com", "Operator-Password-1")["AccessToken"]
    assert call(stack.url, "GET", "/agents", token).status == 200
    assert call(stack.url, "GET", "/users", token).status == 403  # operator: from the group
    bystander = ws_connect(stack.url, org["adminKey"])
    assert next_event(bystander)["event"] == "system:connected"
    with ws_connect(stack.url, token) as conn:
        assert next_event(conn)["event"] == "system:connected"
        conn.send(json.dumps({"action": "ping"}))
        assert next_event(conn)["event"] == "system:pong"
        assert call(stack.url, "DELETE", f"/users/{person['userId']}", org["adminKey"]).status == 204
        closed_within(conn, 2.0)
    r = call(stack.url, "GET", "/agents", token)
    assert r.status == 401 and r.json["error"]["code"] == "UNAUTHORIZED"
    status, answer = cognito(oidc, "InitiateAuth", {"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": oidc["clientId"],
                                                    "AuthParameters": {"USERNAME": "op@example.com",
                                                                       "PASSWORD": "Operator-Password-1"}})
    assert status == 400 and answer["__type"] == "NotAuthorizedException"
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(stack.url, token)
    assert refused.value.response.status_code == 401
    bystander.send(json.dumps({"action": "ping"}))  # the admin key's socket stays
    assert next_event(bystander)["event"] == "system:pong"
    bystander.close()


def test_a_socket_opened_with_a_token_closes_when_the_token_expires(stack, oidc):
    org = call(stack.url, "POST", "/orgs", ROOT_KEY, {"name": "expiry"}).json
    invite(stack, org["adminKey"], "short@example.com", "admin", "Short-Lived-Password-1")
    idp = stack.aws("cognito-idp")
    pool, client = stack.environment["COGNITO_USER_POOL_ID"], oidc["clientId"]
    before = idp.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]
    idp.update_user_pool_client(UserPoolId=pool, ClientId=client, AccessTokenValidity=4,
                                TokenValidityUnits={"AccessToken": "seconds"})
    try:
        tokens = sign_in(oidc, "short@example.com", "Short-Lived-Password-1")
    finally:
        idp.update_user_pool_client(UserPoolId=pool, ClientId=client,
                                    AccessTokenValidity=before["AccessTokenValidity"],
                                    TokenValidityUnits=before["TokenValidityUnits"])
    assert tokens["ExpiresIn"] == 4
    expires = time.time() + tokens["ExpiresIn"]
    with ws_connect(stack.url, tokens["AccessToken"]) as conn:
        assert next_event(conn)["event"] == "system:connected"
        swept = call(stack.url, "POST", "/_local/schedules/ws_token_expiry/run")
        assert swept.status == 200 and swept.json["ok"]
        conn.send(json.dumps({"action": "ping"}))
        assert next_event(conn)["event"] == "system:pong"  # not expired yet: still open
        while time.time() <= expires + 0.05:  # the token's own clock; nothing to poll for before it
            time.sleep(0.1)
        swept = call(stack.url, "POST", "/_local/schedules/ws_token_expiry/run")
        assert swept.status == 200 and swept.json["ok"], swept.json
        closed_within(conn, 2.0)
