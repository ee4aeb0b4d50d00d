from __future__ import annotations

from datetime import datetime, timezone

from chalice import Blueprint

from chalicelib.core.paging import next_token as encode_token, start_key as page_start
from chalicelib.core.api import Call, Reply, endpoint
from chalicelib.core.auth import Scope
from chalicelib.orgs import models, service, store

bp = Blueprint(__name__)
TAG = "Organizations and keys"


@endpoint(bp, "/orgs", "POST", scope=Scope.ADMIN, body=models.CreateOrgRequest, response=models.OrgCreated,
          status=201, summary="Create an organization and its first admin key (root admins only)", tag=TAG,
          errors=(409,))
def create_org(call: Call) -> dict:
    return service.create_org(call.principal, call.body.name, call.trace_id)


@endpoint(bp, "/keys", "POST", scope=Scope.ADMIN, body=models.CreateKeyRequest, response=models.KeyCreated,
          status=201, summary="Create an API key (shown once)", tag=TAG, errors=(409,))
def create_key(call: Call) -> dict:
    b = call.body
    return service.create_key(call.principal, b.name, b.scope, b.agent_id, b.expires_at,
                              datetime.now(timezone.utc), call.trace_id)


@endpoint(bp, "/keys", "GET", scope=Scope.ADMIN, query=models.ListQuery, response=models.KeyList,
          summary="List the organization's keys (never their secrets)", tag=TAG)
def list_keys(call: Call) -> dict:
    scope = f"keys:{call.org_id}"
    start = page_start(call.query.next_token, scope)
    page = store.list_keys(call.org_id, call.query.limit, start)
    return {"items": service.key_infos(page.items), "nextToken": encode_token(page.last_key, scope)}


@endpoint(bp, "/keys/{keyId}", "DELETE", scope=Scope.ADMIN, status=204, response=None,
          summary="Revoke a key at once", tag=TAG, errors=(404,))
def revoke_key(call: Call) -> Reply | None:
    service.revoke_key(call.principal, call.params["keyId"], call.trace_id)
    return None
