"""The local stack end to end: `python -m devstack` serving tests/e2e/toy_app.py.

Every check goes over the wire (HTTP, WebSocket, boto3 against the embedded
moto) and looks at what the toy app's handlers recorded in the main table.
The first tests are in-process checks of the pieces that need no server.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from devstack import events
from devstack.moto_server import SerializeDynamoDB
from devstack.pumps import _failed_message_ids
from devstack.testing import Devstack, running_devstack

TOY_APP = "tests.e2e.toy_app"


# --- in-process: pieces that need no server -------------------------------------------

def test_dynamodb_requests_are_serialized_and_others_are_not():
    active, peak, lock = {"n": 0}, {"dynamodb": 0, "sqs": 0}, threading.Lock()

    def slow_app(environ, start_response):
        kind = "dynamodb" if "DynamoDB" in environ.get("HTTP_X_AMZ_TARGET", "") else "sqs"
        with lock:
            active["n"] += 1
            peak[kind] = max(peak[kind], active["n"])
        time.sleep(0.05)
        with lock:
            active["n"] -= 1
        start_response("200 OK", [])
        return [b"ok"]

    app = SerializeDynamoDB(slow_app)

    def call(target):
        assert app({"HTTP_X_AMZ_TARGET": target}, lambda *args: None) == [b"ok"]

    for targets in (["DynamoDB_20120810.PutItem", "DynamoDBStreams_20120810.GetRecords"] * 4,
                    ["AmazonSQS.ReceiveMessage"] * 8):
        threads = [threading.Thread(target=call, args=(target,)) for target in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert peak == {"dynamodb": 1, "sqs": 8}


def test_sqs_event_has_lambdas_shape():
    message = {
        "MessageId": "m-1", "ReceiptHandle": "rh", "Body": "hello", "MD5OfBody": "md5",
        "MD5OfMessageAttributes": "md5a",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000", "MessageGroupId": "g"},
        "MessageAttributes": {"s": {"DataType": "String", "StringValue": "v"},
                              "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
    }
    event = events.sqs_event([message], "arn:aws:sqs:eu-west-1:123456789012:q.fifo")
    assert event == {"Records": [{
        "messageId": "m-1", "receiptHandle": "rh", "body": "hello",
        "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000", "MessageGroupId": "g"},
        "messageAttributes": {
            "s": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "b": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        },
        "md5OfBody": "md5", "md5OfMessageAttributes": "md5a",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:q.fifo",
        "awsRegion": "eu-west-1",
    }]}


@pytest.mark.parametrize("result, failed", [
    (None, set()),
    ({"batchItemFailures": []}, set()),
    ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
    # Lambda treats the whole batch as failed when an identifier is missing or unknown.
    ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b", "c"}),
    ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b", "c"}),
    ({"batchItemFailures": [{}]}, {"a", "b", "c"}),
])
def test_batch_item_failures_are_read_as_lambda_reads_them(result, failed):
    assert _failed_message_ids(result, {"a", "b", "c"}) == failed


def test_dynamodb_record_has_lambdas_shape():
    created = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    record = {
        "eventID": "e1", "eventName": "MODIFY", "eventVersion": "1.0", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"ApproximateCreationDateTime": created, "Keys": {"id": {"S": "k"}},
                     "NewImage": {"id": {"S": "k"}, "b": {"B": b"\x01"}, "m": {"M": {"l": {"L": [{"BS": [b"\x02"]}]}}}},
                     "OldImage": {"id": {"S": "k"}, "n": {"N": "1"}},
                     "SequenceNumber": "100", "SizeBytes": 42, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }
    event = events.dynamodb_event([record], "arn:stream")
    assert event == {"Records": [{
        "eventID": "e1", "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"ApproximateCreationDateTime": int(created.timestamp()), "Keys": {"id": {"S": "k"}},
                     "NewImage": {"id": {"S": "k"}, "b": {"B": "AQ=="}, "m": {"M": {"l": {"L": [{"BS": ["Ag=="]}]}}}},
                     "OldImage": {"id": {"S": "k"}, "n": {"N": "1"}},
                     "SequenceNumber": "100", "SizeBytes": 42, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "eventSourceARN": "arn:stream",
    }]}


# --- the running stack ------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack() -> Devstack:
    with running_devstack(app_module=TOY_APP) as running:
        yield running
    assert running.returncode == 0, f"devstack did not stop cleanly:\n{running.log_tail()}"


def http(stack: Devstack, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(stack.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def wait_for(stack: Devstack, what: str, check, timeout: float = 15.0):
    """Poll `check` until it returns something truthy; fail with the stack's log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}\n--- devstack log ---\n{stack.log_tail()}")


def recorded(stack: Devstack, what: str) -> dict[str, Any] | None:
    """What the toy app recorded under `what`: {"payload": ..., "seen": n}, or None."""
    item = stack.aws("dynamodb").get_item(
        TableName=stack.environment["MAIN_TABLE"], Key={"PK": {"S": what}, "SK": {"S": "-"}}, ConsistentRead=True
    ).get("Item")
    if item is None:
        return None
    return {"payload": json.loads(item["payload"]["S"]), "seen": int(item["seen"]["N"])}


def management(stack: Devstack):
    return boto3.client("apigatewaymanagementapi", endpoint_url=stack.url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def signed_headers(stack: Devstack, method: str, path: str) -> dict[str, str]:
    """SigV4 headers for a hand-made management API request, signed as the app's boto3 client signs."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=stack.url + path, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def open_socket(stack: Devstack, token: str = "good"):
    socket = connect(f"{stack.url.replace('http://', 'ws://')}/ws?token={token}&extra=1", open_timeout=15)
    assert [socket.recv(timeout=10), socket.recv(timeout=10)] == ["welcome-1", "welcome-2"]
    return socket


def connection_id_of(socket) -> str:
    socket.send("whoami")
    return json.loads(socket.recv(timeout=10))["requestContext"]["connectionId"]


# REST -------------------------------------------------------------------------------------

def test_ready_file_has_urls_and_the_seed(stack):
    assert stack.url.startswith("http://127.0.0.1:")
    assert stack.ws_url == f"{stack.url.replace('http://', 'ws://')}/ws?token=toy"
    assert stack.admin_api_key == "toy"
    assert stack.moto_url.startswith("http://127.0.0.1:") and stack.moto_url != stack.url
    stack_name = os.environ.get("STACK_NAME", "controlplane-local")
    assert stack.environment["MAIN_TABLE"] == f"{stack_name}-main"


def test_rest_round_trip(stack):
    status, headers, body = http(stack, "POST", "/echo/alice?q=1", {"a": [1, 2]})
    assert (status, headers["x-toy"], headers["content-type"]) == (201, "yes", "application/json")
    assert json.loads(body) == {"name": "alice", "method": "POST", "query": {"q": "1"}, "body": {"a": [1, 2]}}
    status, _, body = http(stack, "GET", "/echo/bob")
    assert status == 200 and json.loads(body)["query"] is None


def test_rest_authorizer_and_unknown_routes_answer_like_api_gateway(stack):
    status, headers, body = http(stack, "GET", "/private")
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert headers["x-amzn-errortype"] == "UnauthorizedException"
    status, _, body = http(stack, "GET", "/private", headers={"Authorization": "Bearer toy"})
    assert (status, json.loads(body)) == (200, {"private": True})
    # An unknown route: 404 NOT_FOUND in the contract's shape, as the packaged
    # template's gateway responses answer on AWS (not API Gateway's default 403).
    status, _, body = http(stack, "GET", "/no/such/route")
    assert (status, json.loads(body)["error"]["code"]) == (404, "NOT_FOUND")


def test_rest_binary_response_is_decoded(stack):
    status, headers, body = http(stack, "GET", "/binary", headers={"Accept": "application/x-toy"})
    assert (status, headers["content-type"], body) == (200, "application/x-toy", b"\x00\x01binary")


def test_a_crash_in_the_gateway_answers_500_not_a_hung_connection(stack):
    status, _, body = http(stack, "GET", "/bad-header")
    assert (status, json.loads(body)) == (500, {"error": {"code": "INTERNAL", "message": "internal error"}})


# WebSocket ---------------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["bad", ""])
def test_websocket_refused_with_the_status_connect_returned(stack, token):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{stack.url.replace('http://', 'ws://')}/ws?token={token}", open_timeout=15)
    assert refused.value.response.status_code == 401


def test_websocket_posts_during_connect_arrive_after_the_accept_then_echo_in_order(stack):
    with open_socket(stack) as socket:  # open_socket checks welcome-1, welcome-2 came first
        for index in range(20):
            socket.send(f"message {index}")
        assert [socket.recv(timeout=10) for _ in range(20)] == [f"message {index}" for index in range(20)]


def test_websocket_events_have_api_gateways_shape(stack):
    with open_socket(stack) as socket:
        socket.send("whoami")
        message = json.loads(socket.recv(timeout=10))
        connection_id = message["requestContext"]["connectionId"]
    context = message["requestContext"]
    port = stack.url.rsplit(":", 1)[1]
    assert {k: context[k] for k in ("routeKey", "eventType", "apiId", "stage", "domainName", "messageDirection")} == {
        "routeKey": "$default", "eventType": "MESSAGE", "apiId": "local", "stage": "local",
        "domainName": f"127.0.0.1:{port}", "messageDirection": "IN"}
    assert len(base64.b64decode(connection_id)) == 12
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert all(context[k] for k in ("requestId", "messageId", "extendedRequestId", "connectedAt", "requestTimeEpoch"))
    assert context["connectedAt"] <= context["requestTimeEpoch"]
    assert (message["body"], message["isBase64Encoded"]) == ("whoami", False)

    connected = recorded(stack, f"connect#{connection_id}")["payload"]
    assert connected["requestContext"]["eventType"] == "CONNECT"
    assert connected["requestContext"]["routeKey"] == "$connect"
    assert connected["requestContext"]["connectedAt"] == context["connectedAt"]
    assert connected["queryStringParameters"] == {"token": "good", "extra": "1"}
    assert connected["multiValueQueryStringParameters"] == {"token": ["good"], "extra": ["1"]}
    assert connected["headers"]["upgrade"] == "websocket"
    assert "messageId" not in connected["requestContext"] and "body" not in connected

    disconnected = wait_for(stack, "$disconnect", lambda: recorded(stack, f"disconnect#{connection_id}"))["payload"]
    assert disconnected["requestContext"]["eventType"] == "DISCONNECT"
    assert disconnected["requestContext"]["disconnectStatusCode"] == 1000


def test_a_failing_message_handler_sends_api_gateways_error_frame(stack):
    with open_socket(stack) as socket:
        socket.send("boom")
        error = json.loads(socket.recv(timeout=10))
        assert error["message"] == "Internal server error" and error["connectionId"] and error["requestId"]
        socket.send("still open")
        assert socket.recv(timeout=10) == "still open"


def test_management_api_post_get_delete(stack):
    client = management(stack)
    with open_socket(stack) as socket:
        connection_id = connection_id_of(socket)
        client.post_to_connection(ConnectionId=connection_id, Data=b"from outside \xe2\x9c\x93")
        assert socket.recv(timeout=10) == "from outside \u2713"

        info = client.get_connection(ConnectionId=connection_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert abs(info["ConnectedAt"] - datetime.now(timezone.utc)) < timedelta(minutes=1)
        # The URL-encoded form of the path works too.
        path = f"/%40connections/{urllib.parse.quote(connection_id, safe='')}"
        status, _, body = http(stack, "GET", path, headers=signed_headers(stack, "GET", path))
        assert status == 200 and set(json.loads(body)) == {"connectedAt", "identity", "lastActiveAt"}
        # Like API Gateway's, the local management API wants SigV4 with the stack's credentials.
        assert http(stack, "GET", path)[0] == 403

        socket.send("bye")  # the app deletes its own connection
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=10)
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"too late")


@pytest.mark.parametrize("connection_id", ["nope", "a/b+c=="])
def test_unknown_connections_are_gone(stack, connection_id):
    client = management(stack)
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"x")
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=connection_id)
    with pytest.raises(client.exceptions.GoneException):
        client.delete_connection(ConnectionId=connection_id)


# SQS ------------------------------------------------------------------------------------------

def test_sqs_message_is_processed_with_lambdas_record_and_deleted(stack):
    sqs = stack.aws("sqs")
    queue_url = sqs.get_queue_url(QueueName=stack.environment["JOBS_QUEUE_NAME"])["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="good-1",
                     MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}})
    record = wait_for(stack, "the SQS handler", lambda: recorded(stack, "sqs#good-1"))
    payload = record["payload"]
    assert (payload["eventSource"], payload["awsRegion"], payload["body"]) == ("aws:sqs", "us-east-1", "good-1")
    assert payload["eventSourceARN"].endswith(f":{stack.environment['JOBS_QUEUE_NAME']}")
    assert payload["attributes"]["ApproximateReceiveCount"] == "1"
    assert payload["messageAttributes"]["kind"]["stringValue"] == "test"
    assert payload["messageAttributes"]["kind"]["dataType"] == "String"
    assert payload["md5OfBody"] and payload["receiptHandle"] and payload["messageId"]
    wait_for(stack, "the message to be deleted", lambda: _queue_depth(sqs, queue_url) == 0)
    assert recorded(stack, "sqs#good-1")["seen"] == 1


def test_sqs_failed_items_end_in_the_dlq_and_the_rest_is_deleted(stack):
    sqs = stack.aws("sqs")
    queue_url = sqs.get_queue_url(QueueName=stack.environment["JOBS_QUEUE_NAME"])["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=stack.environment["JOBS_QUEUE_NAME"] + "-dlq")["QueueUrl"]
    # The template's 60 s visibility timeout times maxReceiveCount 5 is too slow for a test.
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})
    # moto reads the queue's visibility timeout when a long poll starts: once a
    # message sent after the change has been handled, every later poll uses 1 s.
    sqs.send_message(QueueUrl=queue_url, MessageBody="sentinel")
    wait_for(stack, "the sentinel", lambda: recorded(stack, "sqs#sentinel"))
    sqs.send_message_batch(QueueUrl=queue_url, Entries=[
        {"Id": "ok", "MessageBody": "good-2"}, {"Id": "fail", "MessageBody": "fail"}])

    def dead_letters():
        return sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages")

    dead = wait_for(stack, "the failed message in the DLQ", dead_letters, timeout=20)
    assert [message["Body"] for message in dead] == ["fail"]
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) >= 5
    # The good message of the batch was deleted, not redelivered with the failed one.
    assert recorded(stack, "sqs#good-2")["seen"] == 1
    assert _queue_depth(sqs, queue_url) == 0


def _queue_depth(sqs, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


# DynamoDB stream ---------------------------------------------------------------------------------

def put_outbox(stack: Devstack, item_id: str, **extra: Any) -> None:
    stack.aws("dynamodb").put_item(TableName=stack.environment["OUTBOX_TABLE"], Item={"id": {"S": item_id}, **extra})


def test_an_outbox_write_reaches_the_stream_handler_in_lambdas_shape(stack):
    put_outbox(stack, "s-1", blob={"B": b"\x00\xff"}, n={"N": "7"})
    payload = wait_for(stack, "the stream handler", lambda: recorded(stack, "stream#s-1"))["payload"]
    assert {k: payload[k] for k in ("eventName", "eventVersion", "eventSource", "awsRegion", "eventSourceARN")} == {
        "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "eventSourceARN": stack.environment["OUTBOX_STREAM_ARN"]}
    assert payload["eventID"]
    dynamodb = payload["dynamodb"]
    assert dynamodb["Keys"] == {"id": {"S": "s-1"}}
    assert dynamodb["NewImage"] == {"id": {"S": "s-1"}, "blob": {"B": "AP8="}, "n": {"N": "7"}}
    assert dynamodb["StreamViewType"] == "NEW_IMAGE" and dynamodb["SequenceNumber"] and dynamodb["SizeBytes"] > 0
    assert isinstance(dynamodb["ApproximateCreationDateTime"], int)
    assert abs(dynamodb["ApproximateCreationDateTime"] - time.time()) < 60


def test_a_failing_stream_batch_is_retried(stack):
    put_outbox(stack, "flaky-1")  # the handler fails the first time it sees this record
    assert wait_for(stack, "the retried batch", lambda: recorded(stack, "stream#flaky-1"))["seen"] == 1


def test_a_batch_that_keeps_failing_is_skipped_and_the_stream_goes_on(stack):
    put_outbox(stack, "poison")
    wait_for(stack, "the poison batch to be skipped", lambda: "skipped a batch of 1 records" in stack.log_tail(200))
    put_outbox(stack, "after-poison")
    wait_for(stack, "the next record", lambda: recorded(stack, "stream#after-poison"))


# Schedules --------------------------------------------------------------------------------------

def test_schedules_are_listed_with_their_next_fire_time(stack):
    status, _, body = http(stack, "GET", "/_local/schedules")
    assert status == 200
    (tick,) = json.loads(body)
    assert set(tick) == {"name", "expression", "nextFireAt"}
    assert (tick["name"], tick["expression"]) == ("tick", "rate(1 minute)")
    assert tick["nextFireAt"].endswith("Z")
    next_run = datetime.fromisoformat(tick["nextFireAt"])
    # Within the next minute (a second of slack for a tick firing right now).
    assert timedelta(seconds=-1) < next_run - datetime.now(timezone.utc) <= timedelta(minutes=1)


def test_a_schedule_runs_on_demand_with_a_scheduled_event(stack):
    status, _, body = http(stack, "POST", "/_local/schedules/tick/run")
    assert status == 200
    answer = json.loads(body)
    assert answer["name"] == "tick" and answer["ok"] is True and "error" not in answer
    assert isinstance(answer["durationMs"], (int, float)) and answer["durationMs"] >= 0
    event = recorded(stack, "schedule#tick")["payload"]
    assert {k: event[k] for k in ("version", "detail-type", "source", "account", "region", "detail")} == {
        "version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "region": "us-east-1", "detail": {}}
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/devstack-toy-local-tick"]
    assert event["time"] and event["id"]
    status, _, body = http(stack, "POST", "/_local/schedules/nope/run")
    assert status == 404 and json.loads(body)["error"]["code"] == "NOT_FOUND"


# Shutdown ----------------------------------------------------------------------------------------------

def test_sigterm_stops_the_stack_cleanly_with_a_websocket_open():
    with running_devstack(app_module=TOY_APP) as other:
        socket = open_socket(other)
        started = time.monotonic()
        assert other.stop(signal.SIGTERM) == 0, other.log_tail()
        assert time.monotonic() - started < 15
        with pytest.raises(ConnectionClosed):  # the server closed the socket on its way down
            socket.recv(timeout=5)
    assert "Traceback" not in other.log_tail(400)
