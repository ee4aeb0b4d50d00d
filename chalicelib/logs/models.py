from __future__ import annotations

from typing import Any, Optional

from pydantic import Field, field_validator
from pydantic.json_schema import JsonDict

from chalicelib.core.models import ApiModel, ResponseModel
from chalicelib.instances.models import json_object
from chalicelib.logs import rules

MAX_FIELDS_BYTES = 16 * 1024
LEVEL_SCHEMA: JsonDict = {"pattern": rules.LEVEL_PATTERN, "description": "INFO, WARN, ERROR, DEBUG or TRACE, any case"}
TIME_SCHEMA: JsonDict = {"description": "ISO 8601 (UTC when no offset is given)"}


class LogEntryIn(ApiModel):
    timestamp: Optional[str] = Field(default=None, max_length=64, json_schema_extra=TIME_SCHEMA)
    level: str = Field(max_length=16, json_schema_extra=LEVEL_SCHEMA)
    message: str = Field(max_length=rules.MAX_MESSAGE_CHARS)
    fields: Optional[dict[str, Any]] = None

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        return rules.parse_level(value)

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        if value is not None:
            rules.parse_timestamp_ms(value)
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return json_object(value, MAX_FIELDS_BYTES)


class PushLogsRequest(ApiModel):
    entries: list[LogEntryIn] = Field(min_length=1, max_length=rules.MAX_ENTRIES)


class PushLogsResult(ResponseModel):
    accepted: int


class LogEntry(ResponseModel):
    """A log entry: the one entity of the log item (logs/store.py maps it), the response and the
    instance:log event's entry. The org and the item's expiry (`ttl`) are never shown."""

    org_id: str = Field(default="", exclude=True)  # not in the JSON: a response read back has none
    entry_id: str = Field(alias="id")  # a ULID whose time part is the timestamp (rules.py)
    instance_id: str
    timestamp: str
    level: str
    message: str
    fields: Optional[dict[str, Any]] = None
    expires_at: int = Field(default=0, exclude=True)  # epoch seconds: the item's ttl

    def as_json(self) -> dict[str, Any]:
        """The entry as the API and the instance:log event show it."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class LogQuery(ApiModel):
    limit: int = Field(default=100, ge=1, le=1000)
    since: Optional[str] = Field(default=None, max_length=64, json_schema_extra={
        "description": "Entries strictly after this ISO 8601 time, or after this log entry id"})
    level: Optional[str] = Field(default=None, max_length=16, json_schema_extra=LEVEL_SCHEMA)

    @field_validator("level")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        return None if value is None else rules.parse_level(value)

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | None) -> str | None:
        rules.since_bound(value)
        return value
