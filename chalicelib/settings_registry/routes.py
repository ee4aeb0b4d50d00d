from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.settings_registry import models, service

bp = Blueprint(__name__)
TAG = "Settings registry"


@endpoint(bp, "/settings/registry", "PUT", scope=Scope.ADMIN, body=models.RegistryPut,
          response=models.RegistryPutResult, tag=TAG, errors=(503,),
          summary="Upsert one registry entry, or {entries: [...]} (up to 500); answers in the same form")
def put_registry(call: Call) -> models.RegistryPutResult:
    return models.RegistryPutResult.model_validate(service.upsert(call, call.body))


@endpoint(bp, "/settings/registry", "GET", scope=Scope.AGENT, query=models.RegistryQuery,
          response=models.SettingList, tag=TAG,
          summary="Registry entries by (gameType, fileType) and/or (section, key), in name order")
def list_registry(call: Call) -> dict:
    q = call.query
    names = {"gameType": q.game_type, "fileType": q.file_type, "section": q.section, "key": q.key}
    page = service.list_entries(call, names, q.limit, q.next_token)
    # a dict, not the model: nextToken stays in the body as null on the last page
    return {"items": [models.SettingEntry.model_validate(i) for i in page["items"]], "nextToken": page["nextToken"]}


@endpoint(bp, "/settings/registry", "DELETE", scope=Scope.ADMIN, query=models.RegistryKey, status=204,
          tag=TAG, errors=(404,), summary="Delete one registry entry (all four names required)")
def delete_registry(call: Call) -> None:
    q = call.query
    service.delete(call, q.game_type, q.file_type, q.section, q.key)


@endpoint(bp, "/settings/validate", "POST", scope=Scope.AGENT, body=models.ValidateRequest,
          response=models.ValidationReport, tag=TAG,
          summary="Check INI text or {section: {key: value}} against the registry of (gameType, fileType)")
def validate(call: Call) -> models.ValidationReport:
    b = call.body
    return models.ValidationReport.model_validate(service.validate(call, b.game_type, b.file_type, b.content, b.values))
