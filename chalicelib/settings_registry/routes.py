from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.settings_registry import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Settings registry"


@endpoint(bp, "/settings/registry", "PUT", scope=Scope.ADMIN, body="RegistryPut",
          response="RegistryPutResult", tag=TAG, errors=(503,),
          summary="Upsert one registry entry, or {entries: [...]} (up to 500); answers in the same form")
def put_registry(call: Call) -> models.RegistryPutResult:
    return service.upsert(call.ctx, call.body)


@endpoint(bp, "/settings/registry", "GET", scope=Scope.AGENT, query="RegistryQuery",
          response="SettingList", tag=TAG,
          summary="Registry entries by (gameType, fileType) and/or (section, key), in name order")
def list_registry(call: Call) -> models.SettingList:
    return service.list_entries(call.ctx, call.query)


@endpoint(bp, "/settings/registry", "DELETE", scope=Scope.ADMIN, query="RegistryKey", status=204,
          tag=TAG, errors=(404,), summary="Delete one registry entry (all four names required)")
def delete_registry(call: Call) -> None:
    service.delete(call.ctx, call.query)


@endpoint(bp, "/settings/validate", "POST", scope=Scope.AGENT, body="ValidateRequest",
          response="ValidationReport", tag=TAG,
          summary="Check INI text or {section: {key: value}} against the registry of (gameType, fileType)")
def validate(call: Call) -> models.ValidationReport:
    return service.validate(call.ctx, call.body)
