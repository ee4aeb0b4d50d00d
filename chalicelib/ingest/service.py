"""Ingest: records from edge gateways, stored once per (organization, agent, recordId).

Each record is one conditional Put (attribute_not_exists) and the records go
in TransactWriteItems of 99 plus the agent's active check (100 items). A new
batch of 500 costs the auth GetItem + 6 transactions. When a record already
exists the transaction is cancelled and DynamoDB names every item whose
condition failed: those are the duplicates, and the same chunk is sent again
without them (one more call). A retried batch therefore never stores a record
twice, and two gateways racing with the same record cannot both win: the
condition, not a prior read, decides.

No audit event per batch: ingest is data, not a change an actor makes to an
entity; the records carry agentId and receivedAt themselves.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

from chalicelib.agents import service as agents
from chalicelib.core.context import Ctx
from chalicelib.core.errors import Forbidden, ValidationError
from chalicelib.core.paging import next_token, start_key
from chalicelib.core.tx import TransactionConflict, TxFailed
from chalicelib.ingest import rules, store
from chalicelib.ingest.models import IngestRecord, IngestResult, RecordPage, StoredRecord

CONFLICT_ROUNDS = 4


@dataclass(frozen=True)
class IngestBatch:
    agent_id: str
    records: list[IngestRecord]


@dataclass(frozen=True)
class ListRecords:
    table: str | None
    agent_id: str | None
    since: str | None
    limit: int
    next_token: str | None


def ingest(ctx: Ctx, command: IngestBatch) -> IngestResult:
    received = ctx.iso()
    texts = [rules.data_json(r.data) for r in command.records]
    too_big = [{"field": f"records.{i}.data", "message": f"is over {rules.MAX_DATA_BYTES} bytes as JSON"}
               for i, text in enumerate(texts) if len(text.encode()) > rules.MAX_DATA_BYTES]
    if too_big:
        raise ValidationError(f"invalid request: {too_big[0]['field']}: {too_big[0]['message']}", too_big)
    keep, repeats = rules.first_occurrences(r.record_id for r in command.records)
    records = [StoredRecord(org_id=ctx.org_id, agent_id=command.agent_id, record_id=command.records[i].record_id,
                            table=command.records[i].table, data=command.records[i].data, ts=command.records[i].ts,
                            received_at=received)
               for i in keep]
    accepted, duplicates = 0, repeats
    for chunk in rules.chunks(records):
        new, dup = _write_chunk(ctx, command.agent_id, chunk)
        accepted += new
        duplicates += dup
    return IngestResult(accepted=accepted, duplicates=duplicates, agent_id=command.agent_id)


def _write_chunk(ctx: Ctx, agent_id: str, chunk: list[StoredRecord]) -> tuple[int, int]:
    pending, duplicates, conflicts = chunk, 0, 0
    while pending:
        tx = ctx.tx()
        agents.require_active(tx, ctx.org_id, agent_id)
        for record in pending:
            tx.put(record.record_id, store.put_new(record))
        try:
            tx.commit()
            return len(pending), duplicates
        except TxFailed as failed:
            if "agent" in failed.names:
                raise Forbidden(f"agent {agent_id} is unknown or inactive") from None
            existing = set(failed.names)
            duplicates += len(existing)
            pending = [r for r in pending if r.record_id not in existing]
        except TransactionConflict:
            # Another upload of the same records is committing right now; the next round sees its result.
            conflicts += 1
            if conflicts >= CONFLICT_ROUNDS:
                raise  # the pipeline answers 503 + Retry-After; the gateway retries the batch
            time.sleep(random.uniform(0.5, 1.5) * 0.02 * 2 ** conflicts)
    return 0, duplicates


def list_records(ctx: Ctx, command: ListRecords) -> RecordPage:
    scope = f"ingest:{ctx.org_id}:{command.table or ''}:{command.agent_id or ''}:{command.since or ''}"
    records, last = store.query(ctx.org_id, command.table, command.agent_id, command.since, command.limit,
                                start_key(command.next_token, scope))
    return RecordPage(items=records, next_token=next_token(last, scope))


def require_agent_key(ctx: Ctx) -> str:
    principal = ctx.principal
    if principal is None or principal.agent_id is None:
        raise Forbidden("POST /ingest takes an agent key: records belong to the agent that sends them")
    return principal.agent_id
