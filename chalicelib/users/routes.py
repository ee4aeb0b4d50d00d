from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.users import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "People"


# "locked": the invitation calls Cognito before its commit (core/idempotency.py).
@endpoint(bp, "/users", "POST", scope=Scope.ADMIN, body="CreateUserRequest", response="User", status=201,
          summary="Invite a person into the organization (Cognito emails them)", tag=TAG, errors=(409, 503),
          idempotency="locked")
def create_user(call: Call) -> models.User:
    return service.create_user(call.ctx, call.body)


@endpoint(bp, "/users", "GET", scope=Scope.ADMIN, query="ListQuery", response="UserList",
          summary="List the organization's people", tag=TAG)
def list_users(call: Call) -> models.UserList:
    return service.list_users(call.ctx, call.query)


@endpoint(bp, "/users/{userId}", "DELETE", scope=Scope.ADMIN, status=204, response=None,
          summary="Disable a person at once: REST 401, sockets closed, no sign-in", tag=TAG, errors=(404, 503))
def disable_user(call: Call) -> None:
    service.disable_user(call.ctx, call.params["userId"])
