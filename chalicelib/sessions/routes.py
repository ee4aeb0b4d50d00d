"""Sessions over HTTP: thin, each route builds a command and calls the service."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.sessions.rules import Status
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.sessions import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Sessions, tasks, approvals, audit"


@endpoint(bp, "/sessions", "POST", scope=Scope.AGENT, body="CreateSessionRequest", response="Session",
          status=201, tag=TAG, summary="Start a session (status pending)")
def create_session(call: Call) -> models.Session:
    b = call.body
    return service.create(call.ctx, service.CreateSession(b.agent_role, b.task_id, b.metadata))


@endpoint(bp, "/sessions", "GET", scope=Scope.AGENT, query="SessionListQuery", response="SessionList",
          tag=TAG, summary="Sessions newest first, a page at a time, with the total (counters, not a count)")
def list_sessions(call: Call) -> models.SessionList:
    q = call.query
    status = Status(q.status) if q.status else None
    return service.list_sessions(call.ctx, service.ListSessions(status, q.page, q.page_size, q.next_token))


@endpoint(bp, "/sessions/active", "GET", scope=Scope.AGENT, query="ActiveListQuery",
          response="SessionList", tag=TAG, summary="Active sessions, newest first, with their total")
def list_active_sessions(call: Call) -> models.SessionList:
    q = call.query
    return service.list_sessions(call.ctx,
                                 service.ListSessions(Status.ACTIVE, q.page, q.page_size, q.next_token))


@endpoint(bp, "/sessions/{sessionId}", "GET", scope=Scope.AGENT, response="Session", tag=TAG,
          errors=(404,), summary="One session")
def get_session(call: Call) -> models.Session:
    return service.get(call.ctx, call.params["sessionId"])


@endpoint(bp, "/sessions/{sessionId}", "PUT", scope=Scope.AGENT, body="UpdateSessionRequest",
          response="Session", tag=TAG, errors=(404, 409),
          summary="Move the status, set taskId, merge metadata key by key (null removes a key)")
def update_session(call: Call) -> models.Session:
    b = call.body
    return service.update(call.ctx, service.UpdateSession(call.params["sessionId"], b.status, b.task_id,
                                                          b.metadata))
