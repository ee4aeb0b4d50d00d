"""$connect, $default and $disconnect, as functions of the API Gateway event."""
from __future__ import annotations

from typing import Any, Iterable

from chalicelib.fanout import adapters
from chalicelib.core import audit, observability
from chalicelib.core.auth import KeyDenied, authenticate
from chalicelib.core.context import Ctx
from chalicelib.core.observability import logger as log
from chalicelib.fanout import fanout, rules, store


def connect(event: dict[str, Any]) -> int:
    """Authenticate ?token=, record the connection and queue system:connected. Returns the status."""
    context = event["requestContext"]
    connection_id = context["connectionId"]
    trace_id = context.get("requestId") or connection_id
    observability.bind_trace(trace_id)
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        principal = authenticate(token)
    except KeyDenied as denied:
        audit.record_denial(denied.org_id, denied.key_id or "anonymous", denied.reason, "GET", "/ws",
                            status=denied.status, email=denied.email)
        observability.count("Denials")
        return 401
    connection = rules.Connection(connection_id, principal.org_id,
                                  adapters.endpoint_for(context["domainName"], context.get("stage", "")),
                                  principal.agent_id, rules.wants_batches(event.get("queryStringParameters")))
    # API Gateway cannot post inside $connect: system:connected goes through the
    # outbox and the fan-out, which runs after this handler has returned.
    ctx = Ctx(principal, trace_id)
    tx = ctx.tx()
    # A credential that expires (a person's token) closes the socket when it does (fanout/expiry.py).
    # One that outlives API Gateway's 2-hour cap (a key with a distant expiresAt) needs no marker.
    expires_at = int(principal.expires_at) if principal.expires_at is not None else None
    if expires_at is not None and expires_at >= ctx.now() + ctx.settings.connection_ttl_seconds:
        expires_at = None
    tx.put("connection", store.connection_put(connection, principal.key_id, expires_at))
    if expires_at is not None:
        tx.put("expiry", store.expiry_marker_put(connection, expires_at))
    tx.emit("system:connected", {"timestamp": ctx.iso(), "connectionId": connection_id}, connection_id=connection_id)
    tx.commit()
    # After the commit, so a fan-out that sees the new version finds the connection (fanout.connections_of).
    changed = ctx.tx()
    changed.update("connections", store.connections_changed(principal.org_id))
    changed.commit()
    return 200


def message(event: dict[str, Any]) -> None:
    context = event["requestContext"]
    observability.bind_trace(context.get("requestId") or context["connectionId"])
    action = rules.parse_client_message(event.get("body"))
    if action == rules.PING:
        endpoint = adapters.endpoint_for(context["domainName"], context.get("stage", ""))
        # system:connected is the first message on every connection, even when
        # the client speaks before the fan-out has greeted it.
        fanout.greet_before_answering(Ctx.system(), endpoint, context["connectionId"])
        adapters.post(endpoint, context["connectionId"], rules.wire("system:pong", {"timestamp": Ctx.system().iso()}))
        return
    log.info("ignored a client message on %s: %s", context["connectionId"],
             "unknown action" if action else "not a JSON object with an action")


def disconnect(event: dict[str, Any]) -> None:
    context = event["requestContext"]
    observability.bind_trace(context.get("requestId") or context["connectionId"])
    fanout.forget(Ctx.system(), context["connectionId"])


def outbox_records(images: Iterable[dict[str, Any]]) -> None:
    """The outbox stream's inserted events (new images, deserialized), delivered to the connections."""
    events = [fanout.event_from_image(image) for image in images]
    if events:
        observability.bind_trace(events[0].event_id)
    result = fanout.deliver(events)
    observability.count("FanoutSent", result.sent)
    if result.gone:
        observability.count("FanoutGone", len(result.gone))
    log.info("fan-out", extra={"events": len(events), "sent": result.sent, "posts": result.posts,
                               "gone": len(result.gone)})
