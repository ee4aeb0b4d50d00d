from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.paging import Page
from chalicelib.settings_registry import models, service

bp = Blueprint(__name__)
TAG = "Settings registry"


@endpoint(bp, "/settings/registry", "PUT", scope=Scope.ADMIN, body=models.RegistryPut,
          response=models.RegistryPutResult, tag=TAG, errors=(503,),
          summary="Upsert one registry entry, or {entries: [...]} (up to 500); answers in the same form")
def put_registry(call: Call) -> models.RegistryPutResult:
    return service.upsert(call.ctx, call.body)


@endpoint(bp, "/settings/registry", "GET", scope=Scope.AGENT, query=models.RegistryQuery,
          response=models.SettingList, tag=TAG,
          summary="Registry entries by (gameType, fileType) and/or (section, key), in name order")
def list_registry(call: Call) -> Page[models.SettingEntry]:
    return service.list_entries(call.ctx, call.query)


@endpoint(bp, "/settings/registry", "DELETE", scope=Scope.ADMIN, query=models.RegistryKey, status=204,
          tag=TAG, errors=(404,), summary="Delete one registry entry (all four names required)")
def delete_registry(call: Call) -> None:
    service.delete(call.ctx, call.query)


@endpoint(bp, "/settings/validate", "POST", scope=Scope.AGENT, body=models.ValidateRequest,
          response=models.ValidationReport, tag=TAG,
          summary="Check INI text or {section: {key: value}} against the registry of (gameType, fileType)")
def validate(call: Call) -> models.ValidationReport:
    return service.validate(call.ctx, call.body)
