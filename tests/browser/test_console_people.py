"""People at the console (issue 21): sign in by email and password against the embedded Cognito pool that
/console/config.json names, see one's own organization only, tokens refreshed before they expire, signed out
when disabled, and a sign-out that ends the Cognito session."""
from __future__ import annotations

import json
import urllib.request

import urllib.error

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import VIEWPORT, Stack, Watched


def invite(stack: Stack, admin_key: str, email: str, scope: str, password: str) -> dict:
    person = stack.call("POST", "/users", admin_key, {"email": email, "scope": scope}, expect=201)
    stack.current.aws("cognito-idp").admin_set_user_password(
        UserPoolId=stack.current.environment["COGNITO_USER_POOL_ID"], Username=email, Password=password,
        Permanent=True)
    return person


@pytest.fixture(scope="module")
def two_orgs(stack: Stack) -> dict:
    """Org A with a person (operator) and an agent; org B with an agent the person must never see."""
    a = stack.call("POST", "/orgs", stack.root_key, {"name": "people-a"}, expect=201)
    b = stack.call("POST", "/orgs", stack.root_key, {"name": "people-b"}, expect=201)
    ours = stack.call("POST", "/agents", a["adminKey"], {"name": "agent-of-org-a", "pools": ["p"]}, expect=201)
    theirs = stack.call("POST", "/agents", b["adminKey"], {"name": "agent-of-org-b", "pools": ["p"]}, expect=201)
    return {"a": a, "b": b, "ours": ours, "theirs": theirs}


def sign_in_as_person(browser, stack: Stack, email: str, password: str, hash_: str = "#/fleet") -> Watched:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    watched = Watched(page)
    page.goto(f"{stack.url}/console{hash_}")
    form = page.get_by_role("form", name="Sign in with email and password")
    expect(form.get_by_label("Choose a new password")).to_be_hidden()  # only for a first sign-in's challenge
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Sign in with email").click()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    return watched


def cognito(stack: Stack, action: str, body: dict) -> tuple[int, dict]:
    config = stack.call("GET", "/console/config.json")
    request = urllib.request.Request(config["oidc"]["endpoint"], data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/x-amz-json-1.1",
                                              "X-Amz-Target": f"AWSCognitoIdentityProviderService.{action}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_a_person_signs_in_sees_their_org_only_and_is_signed_out_when_disabled(stack, browser, two_orgs):
    person = invite(stack, two_orgs["a"]["adminKey"], "pat@example.com", "operator", "Pat-Password-123")
    watched = sign_in_as_person(browser, stack, "pat@example.com", "Pat-Password-123")
    page = watched.page
    expect(page.locator(f"tr[data-agent-id='{two_orgs['ours']['agentId']}']")).to_contain_text("agent-of-org-a")
    expect(page.locator("main")).not_to_contain_text("agent-of-org-b")
    saved = json.loads(page.evaluate("sessionStorage.getItem('console.session')"))
    assert saved["method"] == "oidc" and "Pat-Password-123" not in json.dumps(saved)
    # the admin disables the person: the socket closes, the REST probe answers 401, the page signs out
    stack.call("DELETE", f"/users/{person['userId']}", two_orgs["a"]["adminKey"], expect=204)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("main [role=alert]")).to_contain_text("refused")
    assert page.evaluate("sessionStorage.getItem('console.session')") is None
    # and cannot sign in again
    form = page.get_by_role("form", name="Sign in with email and password")
    form.get_by_label("Email").fill("pat@example.com")
    form.get_by_label("Password", exact=True).fill("Pat-Password-123")
    form.get_by_role("button", name="Sign in with email").click()
    expect(form.get_by_role("status")).to_contain_text("Incorrect email or password, or this person is disabled")
    watched.assert_clean()
    page.context.close()


def test_tokens_are_refreshed_before_they_expire_and_the_socket_reopens_with_the_new_one(stack, browser, two_orgs):
    invite(stack, two_orgs["a"]["adminKey"], "ray@example.com", "operator", "Ray-Password-123")
    idp = stack.current.aws("cognito-idp")
    pool = stack.current.environment["COGNITO_USER_POOL_ID"]
    client = stack.call("GET", "/console/config.json")["oidc"]["clientId"]
    before = idp.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]
    # 63 s tokens: the page refreshes a minute before expiry, so about 3 s after signing in
    idp.update_user_pool_client(UserPoolId=pool, ClientId=client, AccessTokenValidity=63,
                                TokenValidityUnits={"AccessToken": "seconds"})
    try:
        watched = sign_in_as_person(browser, stack, "ray@example.com", "Ray-Password-123")
        page = watched.page
        first = json.loads(page.evaluate("sessionStorage.getItem('console.session')"))["accessToken"]
        with page.expect_websocket(lambda ws: "token=" in ws.url and first not in ws.url, timeout=20_000) as reopened:
            page.wait_for_function(
                "(first) => JSON.parse(sessionStorage.getItem('console.session') || '{}').accessToken !== first",
                arg=first, timeout=20_000)
    finally:
        idp.update_user_pool_client(UserPoolId=pool, ClientId=client,
                                    AccessTokenValidity=before["AccessTokenValidity"],
                                    TokenValidityUnits=before["TokenValidityUnits"])
    second = json.loads(page.evaluate("sessionStorage.getItem('console.session')"))["accessToken"]
    assert second != first and second in reopened.value.url  # the socket reopened with the new token
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator(f"tr[data-agent-id='{two_orgs['ours']['agentId']}']")).to_be_visible()
    watched.assert_clean()
    page.context.close()


def test_signing_out_ends_the_cognito_session_and_api_keys_still_sign_in(stack, browser, two_orgs):
    invite(stack, two_orgs["a"]["adminKey"], "sam@example.com", "admin", "Sam-Password-123")
    watched = sign_in_as_person(browser, stack, "sam@example.com", "Sam-Password-123")
    page = watched.page
    refresh = json.loads(page.evaluate("sessionStorage.getItem('console.session')"))["refreshToken"]
    client = stack.call("GET", "/console/config.json")["oidc"]["clientId"]
    with page.expect_response(lambda r: r.request.headers.get("x-amz-target", "").endswith(".GlobalSignOut")) as ended:
        page.get_by_role("button", name="Sign out").click()
    assert ended.value.status == 200
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    status, answer = cognito(stack, "InitiateAuth", {"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": client,
                                                     "AuthParameters": {"REFRESH_TOKEN": refresh}})
    assert status == 400 and answer["__type"] == "NotAuthorizedException"
    page.get_by_role("textbox", name="API key").fill(two_orgs["a"]["adminKey"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    watched.assert_clean()
    page.context.close()


def test_an_invited_persons_first_sign_in_sets_a_new_password(stack, browser, two_orgs):
    """Cognito's invitation carries a temporary password: the first sign-in answers NEW_PASSWORD_REQUIRED."""
    stack.call("POST", "/users", two_orgs["a"]["adminKey"], {"email": "new@example.com", "scope": "operator"},
               expect=201)
    stack.current.aws("cognito-idp").admin_set_user_password(
        UserPoolId=stack.current.environment["COGNITO_USER_POOL_ID"], Username="new@example.com",
        Password="Temporary-Pass-1", Permanent=False)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    watched = Watched(page)
    page.goto(f"{stack.url}/console#/fleet")
    form = page.get_by_role("form", name="Sign in with email and password")
    form.get_by_label("Email").fill("new@example.com")
    form.get_by_label("Password", exact=True).fill("Temporary-Pass-1")
    form.get_by_role("button", name="Sign in with email").click()
    expect(form.get_by_role("status")).to_contain_text("choose a new password")
    form.get_by_label("Choose a new password").fill("Chosen-Password-99")
    form.get_by_role("button", name="Sign in with email").click()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator(f"tr[data-agent-id='{two_orgs['ours']['agentId']}']")).to_be_visible()
    status, _ = cognito(stack, "InitiateAuth", {
        "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": stack.call("GET", "/console/config.json")["oidc"]["clientId"],
        "AuthParameters": {"USERNAME": "new@example.com", "PASSWORD": "Chosen-Password-99"}})
    assert status == 200
    watched.assert_clean()
    page.context.close()
