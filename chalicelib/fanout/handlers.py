"""$connect, $default and $disconnect, as functions of the API Gateway event."""
from __future__ import annotations

import logging

from chalicelib.aws import dynamo, websocket
from chalicelib.core import audit, clock
from chalicelib.core.auth import KeyDenied, authenticate
from chalicelib.events.outbox import event_put
from chalicelib.fanout import fanout, rules, store

log = logging.getLogger(__name__)


def connect(event: dict) -> int:
    """Authenticate ?token=, record the connection and queue system:connected. Returns the status."""
    context = event["requestContext"]
    connection_id = context["connectionId"]
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        principal = authenticate(token)
    except KeyDenied as denied:
        audit.record_denial(denied.org_id, denied.key_id or "anonymous", denied.reason, "GET", "/ws")
        return 401
    connection = rules.Connection(connection_id, principal.org_id,
                                  websocket.endpoint_for(context["domainName"], context.get("stage", "")),
                                  principal.agent_id)
    # API Gateway cannot post inside $connect: system:connected goes through the
    # outbox and the fan-out, which runs after this handler has returned.
    dynamo.transact([
        store.connection_put(connection, principal.key_id),
        event_put(principal.org_id, "system:connected",
                  {"timestamp": clock.iso(), "connectionId": connection_id}, connection_id=connection_id),
    ])
    return 200


def message(event: dict) -> None:
    context = event["requestContext"]
    action = rules.parse_client_message(event.get("body"))
    if action == rules.PING:
        endpoint = websocket.endpoint_for(context["domainName"], context.get("stage", ""))
        # system:connected is the first message on every connection, even when
        # the client speaks before the fan-out has greeted it.
        fanout.greet_before_answering(endpoint, context["connectionId"])
        websocket.post(endpoint, context["connectionId"], rules.wire("system:pong", {"timestamp": clock.iso()}))
        return
    log.info("ignored a client message on %s: %s", context["connectionId"],
             "unknown action" if action else "not a JSON object with an action")


def disconnect(event: dict) -> None:
    store.remove(event["requestContext"]["connectionId"])
