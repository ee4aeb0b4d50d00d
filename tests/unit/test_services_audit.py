"""GET /audit's service: which partition the filters pick, and the page it returns (no AWS)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib.audit import service as audit, store
from chalicelib.audit.models import AuditEvent, AuditPage
from chalicelib.core.errors import ValidationError
from tests.unit.fakes import ORG, fake_ctx, principal

ITEM = {"PK": f"ORG#{ORG}#AUDIT", "SK": "E1", "eventId": "E1", "entityType": "task", "entityId": "T1",
        "action": "created", "actor": "key:K", "traceId": None, "at": "2026-01-01T00:00:00.000Z",
        "details": {"n": None}}


def test_entity_filter_reads_its_history_narrowed_to_a_trace(monkeypatch):
    seen = []

    def query(selection, since_id, trace_id, limit, start):
        seen.append((selection.index, selection.pk, since_id, trace_id))
        return [store.from_item(ITEM)], None

    monkeypatch.setattr(store, "query", query)
    ctx, _ = fake_ctx(principal())
    page = audit.read(ctx, audit.ReadAudit("task", "T1", "tr", datetime(2026, 1, 1, tzinfo=timezone.utc)))
    assert isinstance(page, AuditPage) and page.next_token is None
    assert page.items == [AuditEvent(event_id="E1", entity_type="task", entity_id="T1", action="created",
                                     actor="key:K", at="2026-01-01T00:00:00.000Z", details={"n": None})]
    index, pk, since_id, trace = seen[0]
    assert index == "GSI1" and pk.endswith("#AUDIT#task#T1") and since_id and trace == "tr"


def test_entity_type_without_entity_id_is_400_naming_the_missing_one():
    ctx, _ = fake_ctx(principal())
    with pytest.raises(ValidationError) as e:
        audit.read(ctx, audit.ReadAudit(entity_type="task"))
    assert e.value.details[0]["field"] == "entityId"
