from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.orgs import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Organizations and keys"


@endpoint(bp, "/orgs", "POST", scope=Scope.ADMIN, body="CreateOrgRequest", response="OrgCreated",
          status=201, summary="Create an organization and its first admin key (root admins only)", tag=TAG,
          errors=(409,))
def create_org(call: Call) -> models.OrgCreated:
    return service.create_org(call.ctx, call.body)


@endpoint(bp, "/keys", "POST", scope=Scope.ADMIN, body="CreateKeyRequest", response="KeyCreated",
          status=201, summary="Create an API key (shown once)", tag=TAG, errors=(409,))
def create_key(call: Call) -> models.KeyCreated:
    return service.create_key(call.ctx, call.body)


@endpoint(bp, "/keys", "GET", scope=Scope.ADMIN, query="ListQuery", response="KeyList",
          summary="List the organization's keys (never their secrets)", tag=TAG)
def list_keys(call: Call) -> models.KeyList:
    return service.list_keys(call.ctx, call.query)


@endpoint(bp, "/keys/{keyId}", "DELETE", scope=Scope.ADMIN, status=204, response=None,
          summary="Revoke a key at once", tag=TAG, errors=(404,))
def revoke_key(call: Call) -> None:
    service.revoke_key(call.ctx, call.params["keyId"])
