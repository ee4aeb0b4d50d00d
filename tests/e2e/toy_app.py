"""A small Chalice app that exercises every part of the local stack.

Test scaffolding, not a model for the real app: it uses plain boto3 and
records what its handlers saw in the main table (PK = what, SK = "-") so the
tests can check the events over the wire.
"""
from __future__ import annotations

import json
import os
import threading

import boto3
from chalice import AuthResponse, Rate, Response

from chalicelib.core.application import ControlPlaneApp

app = ControlPlaneApp(app_name="devstack-toy")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.api.binary_types.append("application/x-toy")

# boto3 sessions are not thread-safe, clients are: create them once, here.
_session = boto3.session.Session()
_dynamodb = _session.client("dynamodb")
_management = _session.client("apigatewaymanagementapi", endpoint_url=os.environ["WEBSOCKET_ENDPOINT_OVERRIDE"])
MAIN_TABLE = os.environ["MAIN_TABLE"]

_flaky_lock = threading.Lock()
_flaky_seen: set[str] = set()


def _record(what: str, payload: object) -> None:
    """Store what a handler saw and count how many times it saw it."""
    _dynamodb.update_item(
        TableName=MAIN_TABLE,
        Key={"PK": {"S": what}, "SK": {"S": "-"}},
        UpdateExpression="SET payload = :payload ADD seen :one",
        ExpressionAttributeValues={":payload": {"S": json.dumps(payload, default=str)}, ":one": {"N": "1"}},
    )


def local_seed() -> dict[str, str]:
    return {"adminApiKey": "toy"}


# --- REST -------------------------------------------------------------------

@app.authorizer()
def toy_auth(auth_request):
    if auth_request.token == "Bearer toy":
        return AuthResponse(routes=["*"], principal_id="admin")
    return AuthResponse(routes=[], principal_id="nobody")


@app.route("/echo/{name}", methods=["GET", "POST"])
def echo(name):
    request = app.current_request
    return Response(
        body={"name": name, "method": request.method, "query": request.query_params,
              "body": request.json_body if request.raw_body else None},
        headers={"X-Toy": "yes"},
        status_code=201 if request.method == "POST" else 200,
    )


@app.route("/private", authorizer=toy_auth)
def private():
    return {"private": True}


@app.route("/binary")
def binary():
    return Response(body=b"\x00\x01binary", headers={"Content-Type": "application/x-toy"})


@app.route("/bad-header")
def bad_header():
    # Not encodable in an HTTP header: the local gateway must answer 500, not hang.
    return Response(body="x", headers={"X-Bad": "\u2603"})


# --- WebSocket --------------------------------------------------------------

@app.on_ws_connect()
def ws_connect(event):
    query = event.to_dict()["queryStringParameters"] or {}
    if query.get("token") != "good":
        return {"statusCode": 401}
    # Posting while $connect runs stands in for the app's fan-out racing the
    # accept: the stack must queue these and deliver them after the accept, in order.
    for text in ("welcome-1", "welcome-2"):
        _management.post_to_connection(ConnectionId=event.connection_id, Data=text.encode())
    _record(f"connect#{event.connection_id}", event.to_dict())
    return {"statusCode": 200}


@app.on_ws_message()
def ws_message(event):
    if event.body == "boom":
        raise RuntimeError("boom")
    if event.body == "whoami":
        reply = json.dumps(event.to_dict())
    elif event.body == "info":
        reply = json.dumps(_management.get_connection(ConnectionId=event.connection_id), default=str)
    elif event.body == "bye":
        _management.delete_connection(ConnectionId=event.connection_id)
        return
    else:
        reply = event.body
    _management.post_to_connection(ConnectionId=event.connection_id, Data=reply.encode())


@app.on_ws_disconnect()
def ws_disconnect(event):
    _record(f"disconnect#{event.connection_id}", event.to_dict())


# --- SQS, DynamoDB stream, schedule -------------------------------------------

@app.on_sqs_message(queue=os.environ["JOBS_QUEUE_NAME"], batch_size=10)
def on_job(event):
    failures = []
    for record in event:
        if record.body == "fail":
            failures.append({"itemIdentifier": record.to_dict()["messageId"]})
        else:
            _record(f"sqs#{record.body}", record.to_dict())
    return {"batchItemFailures": failures}


@app.on_dynamodb_record(stream_arn=os.environ["OUTBOX_STREAM_ARN"], batch_size=10)
def on_outbox(event):
    for record in event:
        item_id = record.new_image["id"]["S"]
        if item_id == "poison":
            raise RuntimeError("poison record")
        if item_id.startswith("flaky"):
            with _flaky_lock:
                first_time = item_id not in _flaky_seen
                _flaky_seen.add(item_id)
            if first_time:
                raise RuntimeError(f"{item_id} fails once")
        _record(f"stream#{item_id}", record.to_dict())


@app.schedule(Rate(1, unit=Rate.MINUTES))
def tick(event):
    _record("schedule#tick", event.to_dict())
    return {"ticked": True, "time": event.time}
