"""chalicelib/settings_registry/service.py on fakes (no moto): what each use case returns is what its route declares."""
from __future__ import annotations

import json

from chalicelib.core.auth import Scope
from chalicelib.settings_registry import models, service as registry, store
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal


def _entry(**extra):
    return {"gameType": "ark", "fileType": "Game.ini", "section": "S", "key": "K", "valueType": "int", **extra}


def test_upsert_stores_the_entry_and_answers_it_without_the_org():
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    out = registry.upsert(ctx, models.RegistryPut.model_validate(_entry(default=3, constraints={})))
    body = assert_declared("PUT", "/settings/registry", out)
    assert body["default"] == 3 and "constraints" not in body and "orgId" not in body  # {} constraints: none
    [item] = ledger.items("entry:")
    entry = out.root
    assert item == store._item(entry)
    assert item["orgId"] == ORG and item["constraints"] is None and json.loads(item["default"]) == 3
    assert store._entity(item) == entry  # the item maps back to the same entity


def test_list_answers_the_declared_page(monkeypatch):
    entry = models.SettingEntry.of(ORG, models.SettingEntryIn.model_validate(
        _entry(constraints={"min": 1, "max": 5})), "t")
    monkeypatch.setattr(store, "list_page", lambda *a: store.EntryPage([entry], None))
    body = assert_declared("GET", "/settings/registry",
                           registry.list_entries(fake_ctx(principal())[0], models.RegistryQuery()))
    assert body["items"][0]["constraints"] == {"min": 1, "max": 5} and body["nextToken"] is None


def test_validate_answers_the_declared_report(monkeypatch):
    entry = models.SettingEntry.of(ORG, models.SettingEntryIn.model_validate(_entry(constraints={"max": 5})), "t")
    monkeypatch.setattr(store, "of_file", lambda org, g, f: [entry])
    report = registry.validate(fake_ctx(principal(Scope.AGENT, "A1"))[0], models.ValidateRequest(
        game_type="ark", file_type="Game.ini", content="[S]\nK=9\n"))
    body = assert_declared("POST", "/settings/validate", report)
    assert body["valid"] is False and body["errors"][0]["key"] == "K"
