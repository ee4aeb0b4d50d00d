"""Instances, logs and the settings registry: each service's decisions, through fakes (no AWS)."""
from __future__ import annotations

import pytest

from chalicelib.core.auth import Scope
from chalicelib.core.errors import Forbidden, NotFound, Unavailable, ValidationError
from chalicelib.instances import models as instance_models, service as instances, store as instance_store
from chalicelib.instances.models import Instance
from chalicelib.logs import models as log_models, service as logs
from chalicelib.settings_registry import models as settings_models, service as registry, store as registry_store
from tests.unit.fakes import ORG, fake_ctx, principal

IID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


def _instance(agent_id: str = "A1") -> Instance:
    return Instance(instance_id=IID, agent_id=agent_id, name="srv", metadata={"k": 1},
                    created_at="2026-01-01T00:00:00.000Z")


# --- instances -----------------------------------------------------------------------

def test_create_writes_the_agent_check_the_instance_and_its_audit_in_one_unit():
    ctx, ledger = fake_ctx(principal())
    out = instances.create(ctx, instance_models.CreateInstanceRequest(agent_id="A1", name="srv"))
    assert out.agent_id == "A1" and out.name == "srv"
    assert ledger.names() == ["agent", "instance", f"audit:instance:{out.instance_id}:created"]
    assert ledger.audits()[0]["actor"] == "key:01KEY000000000000000000000"


def test_create_for_an_unknown_or_inactive_agent_is_400_naming_agent_id():
    ctx, ledger = fake_ctx(principal())
    ledger.fail["agent"] = 1
    with pytest.raises(ValidationError) as e:
        instances.create(ctx, instance_models.CreateInstanceRequest(agent_id="A1", name="srv"))
    assert e.value.details[0]["field"] == "agentId" and not ledger.committed


def test_load_rejects_a_non_ulid_without_reading(monkeypatch):
    monkeypatch.setattr(instance_store, "get", lambda *a: pytest.fail("read"))
    with pytest.raises(NotFound):
        instances.load(fake_ctx(principal())[0], "not-an-id")


def test_an_agent_key_acts_on_its_own_agents_instances_only(monkeypatch):
    monkeypatch.setattr(instance_store, "get", lambda org, iid: _instance("A1"))
    assert instances.get(fake_ctx(principal(Scope.AGENT, "A1"))[0], IID).metadata == {"k": 1}
    with pytest.raises(Forbidden):
        instances.get(fake_ctx(principal(Scope.AGENT, "A2"))[0], IID)
    assert instances.get(fake_ctx(principal(Scope.OPERATOR))[0], IID).agent_id == "A1"


def test_listing_with_an_agent_key_is_limited_to_its_agent(monkeypatch):
    seen = []

    def list_page(org, agent_id, limit, start):
        seen.append(agent_id)
        return instance_store.InstancePage([_instance()], {"PK": "x", "SK": "y"})

    monkeypatch.setattr(instance_store, "list_page", list_page)
    page = instances.list_instances(fake_ctx(principal(Scope.AGENT, "A1"))[0], instance_models.InstanceListQuery())
    assert isinstance(page, instance_models.InstanceList) and page.next_token and seen == ["A1"]
    with pytest.raises(Forbidden):
        instances.list_instances(fake_ctx(principal(Scope.AGENT, "A1"))[0],
                                 instance_models.InstanceListQuery(agent_id="A2"))
    # the token is bound to the list: another filter rejects it
    with pytest.raises(ValidationError):
        instances.list_instances(fake_ctx(principal())[0],
                                 instance_models.InstanceListQuery(next_token=page.next_token))


# --- logs ------------------------------------------------------------------------------

@pytest.fixture
def log_writes(monkeypatch):
    monkeypatch.setattr(instance_store, "get", lambda org, iid: _instance("A1"))


def _push(ctx, entries, key=None):
    return logs.push(ctx, logs.PushLogs(IID, [log_models.LogEntryIn.model_validate(e) for e in entries], key))


def test_push_stores_entries_then_announces_them(log_writes):
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    assert _push(ctx, [{"level": "info", "message": "m"}]).accepted == 1
    [entry] = ledger.items("entry:")
    [event] = ledger.items("event:")
    assert entry["level"] == "INFO" and event["event"] == "instance:log" and event["agentId"] == "A1"
    assert ledger.bulk == [True] and ledger.names()[0] == "entry:0"  # one bulk unit of work, entries first


def test_push_rejects_entries_a_day_in_the_future_naming_each(log_writes):
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    with pytest.raises(ValidationError) as e:
        _push(ctx, [{"level": "INFO", "message": "ok"}, {"timestamp": "2999-01-01T00:00:00Z", "level": "INFO",
                                                          "message": "late"}])
    assert e.value.details[0]["field"] == "entries.1.timestamp" and not ledger.attempts


def test_an_idempotency_key_makes_entry_ids_repeatable(log_writes):
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    entries = [{"timestamp": "2026-01-01T00:00:00Z", "level": "INFO", "message": str(i)} for i in range(3)]
    _push(ctx, entries, key="k")
    _push(ctx, entries, key="k")
    assert [e["id"] for e in ledger.items("entry:", 0)] == [e["id"] for e in ledger.items("entry:", 1)]


def test_a_throttled_store_is_503(log_writes):
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    ledger.conflicts = 1
    with pytest.raises(Unavailable):
        _push(ctx, [{"level": "INFO", "message": "m"}])
    assert not ledger.committed  # nothing written, so no event for entries that were not stored


# --- the settings registry ----------------------------------------------------------------

def _entry(**extra):
    return {"gameType": "ark", "fileType": "Game.ini", "section": "S", "key": "K", "valueType": "int", **extra}


def test_upsert_rejects_duplicates_compared_case_insensitively():
    body = settings_models.RegistryPut.model_validate({"entries": [_entry(), _entry(key=" k ")]})
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    with pytest.raises(ValidationError) as e:
        registry.upsert(ctx, body)
    assert e.value.details[0]["field"] == "entries.1" and not ledger.attempts  # nothing written


def test_upsert_answers_in_the_form_it_was_asked():
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    one = registry.upsert(ctx, settings_models.RegistryPut.model_validate(_entry(default=3)))
    assert isinstance(one.root, settings_models.SettingEntry) and one.root.default == 3
    many = registry.upsert(ctx, settings_models.RegistryPut.model_validate({"entries": [_entry()]}))
    assert isinstance(many.root, settings_models.SettingEntriesOut)
    assert ledger.bulk == [True, True]  # entries and their audit event: one bulk unit of work each
    assert [ledger.audits(i)[0]["entityId"] for i in (0, 1)] == ["ark/Game.ini", "ark/Game.ini"]
    assert ledger.names(0)[-1].startswith("audit:")  # the audit event rides after the entries


def test_deleting_a_missing_entry_is_404():
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    ledger.fail["entry"] = 1
    with pytest.raises(NotFound):
        registry.delete(ctx, settings_models.RegistryKey(game_type="g", file_type="f", section="s", key="k"))
    registry.delete(ctx, settings_models.RegistryKey(game_type="g", file_type="f", section="s", key="k"))
    assert ledger.names()[0] == "entry"


def test_validate_checks_values_against_the_registry_of_one_file(monkeypatch):
    stored = settings_models.SettingEntry.of(
        ORG, settings_models.SettingEntryIn.model_validate(_entry(constraints={"min": 1, "max": 5})), "t")
    monkeypatch.setattr(registry_store, "of_file", lambda org, g, f: [stored])
    report = registry.validate(fake_ctx(principal(Scope.AGENT, "A1"))[0], settings_models.ValidateRequest(
        game_type="ark", file_type="Game.ini", values={"S": {"K": 9, "Other": 1}}))
    assert not report.valid and report.errors[0].key == "K" and report.unknown_keys[0].key == "Other"
