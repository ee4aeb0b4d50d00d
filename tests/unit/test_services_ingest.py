"""chalicelib/ingest/service.py on the fake unit of work (no moto): dedup by recordId, the declared results."""
from __future__ import annotations

import pytest

from chalicelib.core.auth import Scope
from chalicelib.core.errors import Forbidden
from chalicelib.core.tx import TxFailed
from chalicelib.ingest import models, service as ingest, store
from tests.unit.declared import assert_declared
from tests.unit.fakes import FakeTx, ORG, fake_ctx, principal


def _records(*ids: str) -> list[models.IngestRecord]:
    return [models.IngestRecord(record_id=i, table="t", data={"v": i, "n": None}, ts="2027-01-01T00:00:00Z")
            for i in ids]


def test_a_batch_is_stored_once_per_record_id_and_answers_the_declared_result():
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    out = ingest.ingest(ctx, ingest.IngestBatch("A1", _records("r1", "r2", "r1")))
    body = assert_declared("POST", "/ingest", out)
    assert body == {"accepted": 2, "duplicates": 1, "agentId": "A1"}
    assert ledger.names() == ["agent", "r1", "r2"]
    item = ledger.committed[-1]["r1"].item
    assert item["orgId"] == ORG and item["data"] == '{"v":"r1","n":null}' and item["GSI4PK"].endswith("#AGENT#A1")


def test_records_already_stored_are_counted_as_duplicates_and_the_rest_written(monkeypatch):
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    commit = FakeTx.commit
    calls = []

    def first_fails_on_r2(self):
        calls.append(self.names)
        if len(calls) == 1:
            raise TxFailed("r2", names=["r2"])
        commit(self)

    monkeypatch.setattr(FakeTx, "commit", first_fails_on_r2)
    out = ingest.ingest(ctx, ingest.IngestBatch("A1", _records("r1", "r2")))
    assert (out.accepted, out.duplicates) == (1, 1) and calls[1] == ["agent", "r1"]


def test_an_inactive_agent_is_403_and_only_an_agent_key_may_ingest():
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    ledger.fail["agent"] = 1
    with pytest.raises(Forbidden):
        ingest.ingest(ctx, ingest.IngestBatch("A1", _records("r1")))
    with pytest.raises(Forbidden):
        ingest.require_agent_key(fake_ctx(principal())[0])


def test_list_records_returns_the_declared_page_without_the_org(monkeypatch):
    stored = models.StoredRecord(org_id=ORG, record_id="r1", agent_id="A1", table="t", data=None,
                                 ts="2027-01-01T00:00:00.000Z", received_at="2027-01-01T00:00:01.000Z")
    monkeypatch.setattr(store, "query", lambda *a: ([stored], {"PK": "x", "SK": "y"}))
    page = ingest.list_records(fake_ctx(principal())[0], ingest.ListRecords(None, None, None, 10, None))
    body = assert_declared("GET", "/ingest/records", page)
    assert body["items"][0]["recordId"] == "r1" and "orgId" not in body["items"][0] and body["nextToken"]
    assert body["items"][0]["data"] is None  # a record's data is always shown, null included
