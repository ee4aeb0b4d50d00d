from __future__ import annotations

from typing import Any, ClassVar, Optional

from pydantic import Field, field_validator

from chalicelib.core.models import ApiModel, PageModel, ResponseModel, ShowsNulls
from chalicelib.ingest import rules


class IngestRecord(ApiModel):
    record_id: str = Field(pattern=rules.RECORD_ID_PATTERN, description="unique per agent: a retry sends the same id")
    table: str = Field(pattern=rules.TABLE_PATTERN)
    data: Any = None
    ts: str = Field(description="ISO 8601 UTC, the record's own time")

    @field_validator("ts")
    @classmethod
    def _ts(cls, value: str) -> str:
        return rules.normalize_ts(value)


class IngestRequest(ApiModel):
    batch_id: Optional[str] = Field(default=None, max_length=128)
    records: list[IngestRecord] = Field(max_length=rules.MAX_RECORDS)


class IngestResult(ResponseModel):
    accepted: int
    duplicates: int
    agent_id: str


class RecordsQuery(ApiModel):
    table: Optional[str] = Field(default=None, pattern=rules.TABLE_PATTERN)
    agent_id: Optional[str] = Field(default=None, max_length=64)
    since: Optional[str] = None
    limit: int = Field(default=100, ge=1, le=500)
    next_token: Optional[str] = None

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | None) -> str | None:
        return rules.normalize_ts(value) if value is not None else None


class StoredRecord(ShowsNulls):
    """An ingested record: the one entity of the ingest item (ingest/store.py maps it) and the response.
    The org is never shown."""

    org_id: str = Field(default="", exclude=True)  # not in the JSON: a response read back has none
    record_id: str
    agent_id: str
    table: str
    data: Any = None
    ts: str
    received_at: str

    shown_null: ClassVar[tuple[str, ...]] = ("data",)  # a record's data is always there, null included


class RecordPage(PageModel):
    items: list[StoredRecord]
