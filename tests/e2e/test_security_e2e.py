"""Issue 9 on the real local stack: secrets, revocation, bad input and the edges.

One stack for the module, started with ADMIN_API_KEY set (a key in a format of
the operator's choosing), so its log can be searched for every secret of the
session at the end.
"""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse

import pytest
from websockets.exceptions import ConnectionClosed

from devstack.testing import running_devstack
from tests.e2e.client import call, next_event, ws_connect
from tests.support.asyncapi_events import check_message

pytestmark = pytest.mark.e2e

ROOT_KEY = "root-admin-key-from-the-environment-0123456789"
SECRETS: set[str] = set()  # every secret this module saw; none may be stored or logged


@pytest.fixture(scope="module")
def stack():
    with running_devstack(app_module="app", env={"ADMIN_API_KEY": ROOT_KEY}) as running:
        yield running
    assert running.returncode == 0, running.log_tail()


@pytest.fixture(scope="module")
def org(stack):
    r = call(stack.url, "POST", "/orgs", ROOT_KEY, {"name": "security"})
    assert r.status == 201, r.json
    SECRETS.add(r.json["adminKey"])
    return r.json


def mint(stack, key, body, **kw) -> dict:
    r = call(stack.url, "POST", "/keys", key, body, **kw)
    assert r.status == 201, r.json
    if "apiKey" in r.json:
        SECRETS.add(r.json["apiKey"])
    return r.json


def raw_request(stack, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    host = urllib.parse.urlsplit(stack.url).netloc
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None), dict(response.getheaders())
    finally:
        conn.close()


def secret_part(api_key: str) -> str:
    return api_key.rsplit(".", 1)[-1]


# --- 1. secrets are never stored, never replayed ---------------------------------

def test_a_replayed_key_minting_call_returns_no_secret_and_another_key_gets_none(stack, org):
    admin = org["adminKey"]
    other_admin = mint(stack, admin, {"name": "second admin", "scope": "admin"})["apiKey"]
    body = {"name": "minted once", "scope": "operator"}
    first = mint(stack, admin, body, headers={"Idempotency-Key": "mint-1"})
    replay = call(stack.url, "POST", "/keys", admin, body, headers={"Idempotency-Key": "mint-1"})
    assert replay.status == 201 and replay.headers.get("idempotent-replayed") == "true"
    assert "apiKey" not in replay.json and replay.json["keyId"] == first["keyId"]
    # The same Idempotency-Key from another key of the org is its own call: never the first secret.
    theirs = mint(stack, other_admin, body, headers={"Idempotency-Key": "mint-1"})
    assert theirs["keyId"] != first["keyId"] and theirs["apiKey"] != first["apiKey"]
    # Agents and organizations mint secrets too: replays carry none.
    agent = call(stack.url, "POST", "/agents", admin, {"name": "a"}, headers={"Idempotency-Key": "agent-1"})
    SECRETS.add(agent.json["apiKey"])
    again = call(stack.url, "POST", "/agents", admin, {"name": "a"}, headers={"Idempotency-Key": "agent-1"})
    assert again.status == 201 and "apiKey" not in again.json and again.json["agentId"] == agent.json["agentId"]
    made = call(stack.url, "POST", "/orgs", ROOT_KEY, {"name": "o"}, headers={"Idempotency-Key": "org-1"})
    SECRETS.add(made.json["adminKey"])
    made_again = call(stack.url, "POST", "/orgs", ROOT_KEY, {"name": "o"}, headers={"Idempotency-Key": "org-1"})
    assert "adminKey" not in made_again.json and made_again.json["orgId"] == made.json["orgId"]
    # A replay through a revoked key is 401 like any call.
    assert call(stack.url, "DELETE", f"/keys/{theirs['keyId']}", admin).status == 204
    assert call(stack.url, "DELETE", "/keys/" + first["keyId"], admin).status == 204
    own_replay = call(stack.url, "POST", "/keys", other_admin, body, headers={"Idempotency-Key": "mint-1"})
    assert own_replay.status == 201 and own_replay.json["keyId"] == theirs["keyId"]
    assert "apiKey" not in own_replay.json
    assert call(stack.url, "DELETE", "/keys/" + other_admin.split(".")[1], admin).status == 204
    assert call(stack.url, "POST", "/keys", other_admin, body,
                headers={"Idempotency-Key": "mint-1"}).status == 401


def test_no_table_holds_a_secret_after_minting(stack, org):
    for i in range(3):
        mint(stack, org["adminKey"], {"name": f"scan {i}", "scope": "operator"}, headers={"Idempotency-Key": f"s{i}"})
    dynamodb = stack.aws("dynamodb")
    dumped = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            dumped.append(json.dumps(page["Items"]))
    everything = "\n".join(dumped)
    assert SECRETS and ROOT_KEY not in everything
    for secret in SECRETS:
        assert secret_part(secret) not in everything, "a secret is stored in plain text"


# --- 3. revocation closes sockets within a second -------------------------------------

def closed_within(conn, seconds: float) -> float:
    started = time.monotonic()
    with pytest.raises(ConnectionClosed):
        while True:
            conn.recv(timeout=seconds)
    return time.monotonic() - started


def test_a_revoked_keys_socket_is_closed_within_a_second(stack, org):
    key = mint(stack, org["adminKey"], {"name": "watcher", "scope": "operator"})
    bystander = ws_connect(stack.url, org["adminKey"])
    assert next_event(bystander)["event"] == "system:connected"
    with ws_connect(stack.url, key["apiKey"]) as conn:
        assert next_event(conn)["event"] == "system:connected"
        started = time.monotonic()
        assert call(stack.url, "DELETE", f"/keys/{key['keyId']}", org["adminKey"]).status == 204
        closed_within(conn, 1.0)
        assert time.monotonic() - started < 1.0
    # Another key's socket stays open.
    bystander.send('{"action": "ping"}')
    assert next_event(bystander)["event"] == "system:pong"
    bystander.close()


def test_a_deactivated_agents_socket_is_closed_within_a_second(stack, org):
    agent = call(stack.url, "POST", "/agents", org["adminKey"], {"name": "leaver"}).json
    SECRETS.add(agent["apiKey"])
    with ws_connect(stack.url, agent["apiKey"]) as conn:
        assert next_event(conn)["event"] == "system:connected"
        started = time.monotonic()
        r = call(stack.url, "POST", f"/agents/{agent['agentId']}/deactivate", org["adminKey"])
        assert r.status == 200
        closed_within(conn, 1.0)
        assert time.monotonic() - started < 1.0


# --- 4, 5, 6. bad input and the edges ---------------------------------------------------

def test_bad_input_is_4xx_never_500(stack, org):
    admin = org["adminKey"]
    json_headers = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}
    # 5 KB trace ids: the call works, the trace id is replaced by a fresh one, and denials are audited.
    long_trace = "t" * 5000
    for path, body in (("/keys", {"name": "k", "scope": "operator"}), ("/agents", {"name": "t"}),
                       ("/jobs", {"pool": "p", "type": "t", "payload": {}})):
        r = call(stack.url, "POST", path, admin, body, headers={"X-Trace-Id": long_trace})
        assert r.status == 201, (path, r.json)
        SECRETS.add(r.json.get("apiKey") or "")
        assert r.headers["x-trace-id"] != long_trace and len(r.headers["x-trace-id"]) <= 128
        assert call(stack.url, "POST", path, None, body, headers={"X-Trace-Id": long_trace}).status == 401
    SECRETS.discard("")
    cases = [
        ("POST", "/jobs", b'{"pool": "p", "type": "t", "payload": {"x": 1e400}}', "payload.x"),
        ("POST", "/jobs", b'{"pool": "p", "type": "t", "payload": {"x": -1e400}}', "payload.x"),
        ("POST", "/jobs", b'{"pool": "p", "type": "t", "payload": {"s": "\\ud800"}}', "payload.s"),
        ("POST", "/agents", b'{"name": "\\udfff"}', "name"),
        ("POST", "/jobs", b'{"pool": "p", "type": "t", "payload": {"n": ' + b"9" * 400 + b"}}", "payload.n"),
        ("PUT", "/settings/registry", json.dumps({"gameType": "g", "fileType": "f", "section": "s", "key": "k",
                                                  "valueType": "int"}).encode()[:-1]
         + b', "default": ' + b"1" * 400 + b"}", "default"),
        ("PUT", "/settings/registry", json.dumps({"gameType": "g", "fileType": "f", "section": "s", "key": "k",
                                                  "valueType": "int"}).encode()[:-1]
         + b', "constraints": {"min": ' + b"2" * 400 + b"}}", "constraints.min"),
        ("PUT", "/settings/registry", json.dumps({"gameType": "g", "fileType": "f", "section": "s", "key": "k",
                                                  "valueType": "enum"}).encode()[:-1]
         + b', "constraints": {"enum": [' + b"3" * 400 + b"]}}", "constraints.enum.0"),
    ]
    for method, path, raw, field in cases:
        status, body, _ = raw_request(stack, method, path, raw, json_headers)
        assert status == 400, (path, raw[:60], status, body)
        assert body["error"]["details"][0]["field"] == field, body
    for path in ("/keys/" + "k" * 5000, "/jobs/" + "j" * 5000, "/agents/" + "a" * 5000):
        status, body, _ = raw_request(stack, "DELETE" if path.startswith("/keys") else "GET", path, b"",
                                      json_headers)
        assert 400 <= status < 500, (path[:20], status)
    # An agent key for an agent the organization does not have.
    r = call(stack.url, "POST", "/keys", admin, {"name": "ghost", "scope": "agent", "agentId": "01ARZ3NDEKTSV4RRFFQ69G5FAV"})
    assert r.status == 404 and r.json["error"]["code"] == "NOT_FOUND"
    # Nothing stored answers Infinity: every list still parses strictly.
    for path in ("/jobs", "/agents"):
        status, body, _ = raw_request(stack, "GET", path, b"", json_headers)
        assert status == 200


def test_the_edges_speak_the_contract(stack, org):
    admin = {"Authorization": f"Bearer {org['adminKey']}"}
    for path in ("/nope", "/keys/x/y/z", "/jobs/../keys", "/./health", "/keys/%2e%2e"):
        status, body, _ = raw_request(stack, "GET", path, b"", admin)
        assert status == 404 and body["error"]["code"] == "NOT_FOUND", (path, status, body)
    status, body, _ = raw_request(stack, "DELETE", "/health")
    assert status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED"
    status, body, _ = raw_request(stack, "PATCH", "/keys", b"", admin)
    assert status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED"
    status, body, _ = raw_request(stack, "PATCH", "/keys")
    assert status == 401  # after auth
    form = {**admin, "Content-Type": "application/x-www-form-urlencoded"}
    status, body, _ = raw_request(stack, "POST", "/keys", b"name=x&scope=admin", form)
    assert status == 415 and body["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    status, body, _ = raw_request(stack, "POST", "/keys", b"name=x", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401
    status, body, headers = raw_request(stack, "HEAD", "/health")
    assert status == 200 and body is None


# --- 10. the local stack is no softer than AWS -------------------------------------------------

def test_connections_api_requires_the_stacks_own_sigv4(stack, org):
    import boto3
    from botocore.exceptions import ClientError

    # Frames are checked by hand: this test posts one of its own ("signed"), not a contract event.
    with ws_connect(stack.url, org["adminKey"], check_events=False) as conn:
        connected = next_event(conn)
        check_message(connected)
        connection_id = connected["data"]["connectionId"]
        forged = json.dumps({"event": "job:completed", "data": {"jobId": "forged"}}).encode()
        path = "/@connections/" + urllib.parse.quote(connection_id, safe="")
        status, body, _ = raw_request(stack, "POST", path, forged)
        assert status == 403
        for secret in ("wrong-secret",):
            intruder = boto3.client("apigatewaymanagementapi", endpoint_url=stack.url, region_name="us-east-1",
                                    aws_access_key_id="testing", aws_secret_access_key=secret)
            with pytest.raises(ClientError) as refused:
                intruder.post_to_connection(ConnectionId=connection_id, Data=forged)
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        own = boto3.client("apigatewaymanagementapi", endpoint_url=stack.url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        own.post_to_connection(ConnectionId=connection_id, Data=b'{"event": "signed", "data": {}}')
        assert next_event(conn)["event"] == "signed"  # the forged one never arrived


def read_answer(s: socket.socket) -> str:
    data = b""
    while b"PAYLOAD_TOO_LARGE" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def test_bodies_over_the_limit_are_refused_unread(stack, org):
    host, port = urllib.parse.urlsplit(stack.url).netloc.rsplit(":", 1)
    # Content-Length of 50 MB, a few bytes sent: 413 at once, the rest never read.
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 52428800\r\n\r\n{\"name\": ")
        answer = read_answer(s)
        assert answer.startswith("HTTP/1.1 413") and "PAYLOAD_TOO_LARGE" in answer
    # Chunked, no Content-Length: refused once the streamed bytes pass the limit.
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        answer = b""
        try:
            for _ in range(40):  # 2.5 MB at most, far below 50 MB
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server closed after answering
        s.settimeout(10)
        answer = read_answer(s)
        assert answer.startswith("HTTP/1.1 413") and "PAYLOAD_TOO_LARGE" in answer, answer[:80]


# --- 7. system:connected first ----------------------------------------------------------------

def test_fifty_sockets_that_ping_at_once_all_get_system_connected_first(stack, org):
    firsts: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(50)

    def client():
        try:
            with ws_connect(stack.url, org["adminKey"]) as conn:
                barrier.wait(timeout=30)
                conn.send('{"action": "ping"}')
                first = next_event(conn, timeout=20)
                firsts.append(first["event"])
                if first["event"] == "system:connected":
                    assert next_event(conn, timeout=20)["event"] == "system:pong"
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert firsts == ["system:connected"] * 50


# --- 2. no secret in the log (last: the whole session's log) ---------------------------------

def test_the_whole_stack_log_holds_no_secret(stack, org):
    # Keys in headers and query strings, valid, revoked and forged.
    for key in [*SECRETS, ROOT_KEY, "cpk.01ARZ3NDEKTSV4RRFFQ69G5FAV.forgedsecretvalue"]:
        call(stack.url, "GET", "/keys", key)
        try:
            ws_connect(stack.url, key).close()
        except Exception:  # noqa: BLE001 - refused upgrades are part of the session
            pass
        raw_request(stack, "GET", f"/health?token={urllib.parse.quote(key)}")
    log = stack.log_path.read_text(errors="replace")
    assert "/ws?token=[redacted]" in log  # the access log is there, masked
    assert ROOT_KEY not in log
    for secret in [*SECRETS, "cpk.01ARZ3NDEKTSV4RRFFQ69G5FAV.forgedsecretvalue"]:
        assert secret_part(secret) not in log, "a secret reached the log"
