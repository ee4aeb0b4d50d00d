"""WebSocket handlers and the outbox fan-out, as Lambda would invoke them."""
from tests.conftest import seed_agent

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from chalicelib.aws import clients, websocket
from chalicelib.events.outbox import emit
from chalicelib.fanout import store
from devstack.sigv4 import SigV4Verifier


def ws_event(route, connection_id, token=None, body=None):
    return {
        "requestContext": {"routeKey": route, "eventType": {"$connect": "CONNECT", "$default": "MESSAGE",
                                                            "$disconnect": "DISCONNECT"}[route],
                           "connectionId": connection_id, "apiId": "abc123", "stage": "prod",
                           "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "requestId": "r"},
        "queryStringParameters": {"token": token} if token else None,
        "headers": {}, "isBase64Encoded": False, "body": body,
    }


def queued(job_id: str, agent_id: str | None = None) -> dict:
    """A job:queued payload as the jobs domain emits it (the recorder checks it against docs/asyncapi.json)."""
    target = {"agentId": agent_id} if agent_id else {"pool": "p"}
    return {"jobId": job_id, "status": "QUEUED", "type": "t", **target, "attempts": 0, "priority": 0,
            "at": "2026-01-01T00:00:00.000Z"}


def connect(app_module, connection_id, token):
    return app_module.ws_connect(ws_event("$connect", connection_id, token), None)["statusCode"]


def test_connect_refuses_without_a_valid_token(app_module, org):
    assert connect(app_module, "c-none", None) == 401
    assert connect(app_module, "c-bad", "nope") == 401
    assert store.get("c-bad") is None


def test_connected_is_the_first_message_and_goes_only_to_that_connection(app_module, org, outbox, sent):
    assert connect(app_module, "c-first", org["adminKey"]) == 200
    assert connect(app_module, "c-second", org["adminKey"]) == 200
    outbox.drain()
    first = sent.by_connection["c-first"]
    assert [m["event"] for m in first] == ["system:connected"]
    assert first[0]["data"]["connectionId"] == "c-first"
    assert first[0]["data"]["timestamp"].endswith("Z")
    assert [m["data"]["connectionId"] for m in sent.by_connection["c-second"]] == ["c-second"]
    assert store.get("c-first").endpoint == "https://abc123.execute-api.us-east-1.amazonaws.com/prod"


def test_ping_pong_and_ignored_messages(app_module, org, sent, outbox):
    connect(app_module, "c-ping", org["adminKey"])
    for body in ("not json", "[]", '{"action": "dance"}', '{"action": 5}'):
        assert app_module.ws_message(ws_event("$default", "c-ping", body=body), None)["statusCode"] == 200
    assert "c-ping" not in sent.by_connection
    app_module.ws_message(ws_event("$default", "c-ping", body='{"action": "ping"}'), None)
    # A ping before the fan-out greeted the connection: system:connected still comes first, once.
    assert [m["event"] for m in sent.by_connection["c-ping"]] == ["system:connected", "system:pong"]
    outbox.drain()  # the fan-out's own system:connected finds the greeting sent: not twice
    assert [m["event"] for m in sent.by_connection["c-ping"]] == ["system:connected", "system:pong"]


def test_events_stay_in_their_org_and_agent_keys_see_their_agent_only(app_module, http, org, root, outbox, sent):
    other = http.post("/orgs", root["adminApiKey"], {"name": "B"}).json
    seed_agent(org["orgId"], "agent-1")
    agent_key = http.post("/keys", org["adminKey"], {"name": "a", "scope": "agent", "agentId": "agent-1"}).json["apiKey"]
    connect(app_module, "a1", org["adminKey"])
    connect(app_module, "a2", org["adminKey"])
    connect(app_module, "a-agent", agent_key)
    connect(app_module, "b1", other["adminKey"])
    outbox.drain()
    sent.by_connection.clear()
    emit(org["orgId"], "job:queued", queued("j1", "agent-1"), agent_id="agent-1")
    emit(org["orgId"], "job:queued", queued("j2", "agent-2"), agent_id="agent-2")
    emit(other["orgId"], "job:queued", queued("jb"))
    outbox.drain()
    assert [m["data"]["jobId"] for m in sent.by_connection["a1"]] == ["j1", "j2"]
    assert [m["data"]["jobId"] for m in sent.by_connection["a2"]] == ["j1", "j2"]
    assert [m["data"]["jobId"] for m in sent.by_connection["a-agent"]] == ["j1"]
    assert [m["data"]["jobId"] for m in sent.by_connection["b1"]] == ["jb"]


def test_a_dead_connection_is_removed_on_the_first_failed_send(app_module, org, outbox, sent):
    connect(app_module, "alive", org["adminKey"])
    connect(app_module, "dead", org["adminKey"])
    outbox.drain()
    sent.dead.add("dead")
    emit(org["orgId"], "job:queued", queued("x"))
    outbox.drain()
    assert store.get("dead") is None
    assert store.get("alive") is not None
    assert sent.by_connection["alive"][-1]["data"] == queued("x")


def test_disconnect_forgets_the_connection(app_module, org):
    connect(app_module, "bye", org["adminKey"])
    app_module.ws_disconnect(ws_event("$disconnect", "bye"), None)
    assert store.get("bye") is None


class ManagementApi:
    """A real HTTP server standing in for API Gateway's management API: answers scripted statuses, records requests."""

    def __init__(self):
        self.answers: list[tuple[int, dict, bytes]] = []
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": body})
                status, headers, payload = outer.answers.pop(0)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/prod"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def management_api():
    api = ManagementApi()
    yield api
    api.server.shutdown()
    api.server.server_close()


def test_post_is_a_sigv4_signed_post_to_the_connection(management_api):
    management_api.answers.append((200, {}, b""))
    assert websocket.post(management_api.endpoint, "c=1/x", b'{"event":"e"}') is True
    request = management_api.requests[0]
    assert request["path"] == "/prod/@connections/c%3D1%2Fx"
    assert request["body"] == b'{"event":"e"}'
    credentials = clients.session().get_credentials()
    verifier = SigV4Verifier(credentials.access_key, credentials.secret_key)
    assert "/execute-api/aws4_request" in request["headers"]["authorization"]
    assert verifier.verify("POST", "/prod/@connections/c%3D1%2Fx", "", request["headers"], request["body"]) is None


def test_post_maps_410_gone_to_false(management_api):
    management_api.answers += [(410, {"x-amzn-ErrorType": "GoneException"}, b'{"message": null}'), (200, {}, b"")]
    assert websocket.post(management_api.endpoint, "c", b"x") is False
    assert websocket.post(management_api.endpoint, "c", b"x") is True


def test_post_drops_a_message_over_the_size_limit(management_api, caplog):
    management_api.answers.append((413, {"x-amzn-ErrorType": "PayloadTooLargeException"},
                                   b'{"message": "Message too long"}'))
    assert websocket.post(management_api.endpoint, "big", b"x" * 10) is True
    assert "over the WebSocket size limit for big" in caplog.text


def test_post_raises_on_other_errors(management_api):
    management_api.answers.append((403, {"x-amzn-ErrorType": "ForbiddenException"}, b'{"message": "Forbidden"}'))
    with pytest.raises(ClientError) as raised:
        websocket.post(management_api.endpoint, "c", b"x")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
