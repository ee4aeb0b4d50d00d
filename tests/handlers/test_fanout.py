"""WebSocket handlers and the outbox fan-out, as Lambda would invoke them."""
from tests.conftest import seed_agent

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from chalicelib.aws import clients, websocket
from chalicelib.events.outbox import emit
from chalicelib.fanout import fanout, rules, store
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


def connect_batched(app_module, connection_id, token):
    event = ws_event("$connect", connection_id, token)
    event["queryStringParameters"]["batch"] = "1"
    return app_module.ws_connect(event, None)["statusCode"]


def test_a_batched_connection_gets_a_stream_batch_in_one_message_in_order(app_module, http, org, outbox, sent):
    seed_agent(org["orgId"], "agent-1")
    agent_key = http.post("/keys", org["adminKey"], {"name": "a", "scope": "agent", "agentId": "agent-1"}).json["apiKey"]
    assert connect_batched(app_module, "batched", org["adminKey"]) == 200
    assert connect_batched(app_module, "batched-agent", agent_key) == 200
    connect(app_module, "plain", org["adminKey"])
    assert store.get("batched").batch and not store.get("plain").batch
    for n in range(3):
        emit(org["orgId"], "job:queued", queued(f"j{n}", "agent-1"), agent_id="agent-1")
    emit(org["orgId"], "job:queued", queued("other", "agent-2"), agent_id="agent-2")
    outbox.drain()  # the greetings and the four events in one stream batch
    first, batch = sent.by_connection["batched"]
    assert first["event"] == "system:connected" and first["data"]["connectionId"] == "batched"
    assert batch["event"] == "system:batch"
    assert [(e["event"], e["data"]["jobId"]) for e in batch["data"]["events"]] == [
        ("job:queued", "j0"), ("job:queued", "j1"), ("job:queued", "j2"), ("job:queued", "other")]
    assert batch["data"]["events"][0]["data"] == queued("j0", "agent-1")
    # An agent key still sees its own agent's events only; a lone event travels as itself.
    agent_first, agent_batch = sent.by_connection["batched-agent"]
    assert agent_first["event"] == "system:connected"
    assert [e["data"]["jobId"] for e in agent_batch["data"]["events"]] == ["j0", "j1", "j2"]
    # A connection that did not ask keeps the contract's one message per event.
    assert [m["event"] for m in sent.by_connection["plain"]] == ["system:connected"] + ["job:queued"] * 4
    sent.by_connection.clear()
    emit(org["orgId"], "job:queued", queued("alone", "agent-1"), agent_id="agent-1")
    outbox.drain()
    assert sent.by_connection["batched"] == [{"event": "job:queued", "data": queued("alone", "agent-1")}]


def test_a_gone_batched_connection_is_removed_on_the_first_failed_send(app_module, org, outbox, sent):
    connect_batched(app_module, "b-alive", org["adminKey"])
    connect_batched(app_module, "b-dead", org["adminKey"])
    outbox.drain()
    sent.dead.add("b-dead")
    emit(org["orgId"], "job:queued", queued("x"))
    emit(org["orgId"], "job:queued", queued("y"))
    outbox.drain()
    assert store.get("b-dead") is None and store.get("b-alive") is not None
    assert [e["data"]["jobId"] for e in sent.by_connection["b-alive"][-1]["data"]["events"]] == ["x", "y"]


@pytest.fixture
def list_reads(monkeypatch):
    """How many times the fan-out read an org's connection list (the Query the cache saves)."""
    reads = []
    real = store.of_org

    def of_org(org_id):
        reads.append(org_id)
        return real(org_id)

    monkeypatch.setattr(store, "of_org", of_org)
    return reads


def test_a_warm_fan_out_reads_the_connection_list_again_only_when_it_changed(
        app_module, org, outbox, sent, list_reads, monkeypatch):
    monkeypatch.setattr(fanout, "SETTLE_SECONDS", 0.0)
    connect(app_module, "w1", org["adminKey"])
    outbox.drain()
    emit(org["orgId"], "job:queued", queued("j1"))
    outbox.drain()
    emit(org["orgId"], "job:queued", queued("j2"))
    outbox.drain()
    assert len(list_reads) == 1  # the first job's batch read it; the next found the version unchanged
    connect(app_module, "w2", org["adminKey"])  # a new version: the next batch reads the list again
    emit(org["orgId"], "job:queued", queued("j3"))
    outbox.drain()
    assert len(list_reads) == 2
    assert [m["data"].get("jobId") for m in sent.by_connection["w1"]] == [None, "j1", "j2", "j3"]
    assert [m["event"] for m in sent.by_connection["w2"]] == ["system:connected", "job:queued"]


def test_a_list_read_right_after_a_connect_is_read_again_next_batch(app_module, org, outbox, sent, list_reads):
    # The list comes from an index that lags its table: read within SETTLE_SECONDS of a change, it may
    # lack the newest connection, so it is not trusted for the next batch.
    connect(app_module, "s1", org["adminKey"])
    outbox.drain()  # system:connected goes to its own connection: no list read
    for job_id in ("j1", "j2"):
        emit(org["orgId"], "job:queued", queued(job_id))
        outbox.drain()
    assert len(list_reads) == 2
    assert [m["data"].get("jobId") for m in sent.by_connection["s1"]] == [None, "j1", "j2"]


def test_a_cached_connection_that_is_gone_is_dropped_from_the_list_on_its_first_failed_send(
        app_module, org, outbox, sent, list_reads, monkeypatch):
    monkeypatch.setattr(fanout, "SETTLE_SECONDS", 0.0)
    connect(app_module, "c-live", org["adminKey"])
    connect(app_module, "c-gone", org["adminKey"])
    emit(org["orgId"], "job:queued", queued("j0"))
    outbox.drain()  # the list is read (both connections) and cached
    app_module.ws_disconnect(ws_event("$disconnect", "c-gone"), None)  # no new version: still in the cache
    sent.dead.add("c-gone")
    emit(org["orgId"], "job:queued", queued("j1"))
    outbox.drain()
    emit(org["orgId"], "job:queued", queued("j2"))
    outbox.drain()
    assert len(list_reads) == 1
    assert sent.attempts("c-gone") == 1  # one failed send, then never again
    assert [m["data"]["jobId"] for m in sent.by_connection["c-live"][1:]] == ["j0", "j1", "j2"]


def test_a_connection_item_written_without_a_new_version_is_reached_within_the_cache_age(
        app_module, org, outbox, sent, list_reads, monkeypatch):
    monkeypatch.setattr(fanout, "SETTLE_SECONDS", 0.0)
    connect(app_module, "m1", org["adminKey"])
    emit(org["orgId"], "job:queued", queued("j0"))
    outbox.drain()
    from chalicelib.aws import dynamo
    dynamo.put(store.connection_put(rules.Connection("by-hand", org["orgId"], "https://x/ws"), "k"))
    emit(org["orgId"], "job:queued", queued("j1"))
    outbox.drain()
    assert "by-hand" not in sent.by_connection  # the cached list, as its version said
    monkeypatch.setattr(fanout, "CACHE_MAX_AGE_SECONDS", 0.0)
    emit(org["orgId"], "job:queued", queued("j2"))
    outbox.drain()
    assert [m["data"]["jobId"] for m in sent.by_connection["by-hand"]] == ["j2"]


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
