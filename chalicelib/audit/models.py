"""GET /audit: the query and the event as the contract shows it."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from pydantic import Field, field_validator

from chalicelib.core.models import ApiModel, PageModel, ResponseModel


class AuditQuery(ApiModel):
    entity_type: Optional[str] = Field(default=None, min_length=1, max_length=64)
    entity_id: Optional[str] = Field(default=None, min_length=1, max_length=256)
    trace_id: Optional[str] = Field(default=None, min_length=1, max_length=128)
    since: Optional[datetime] = None
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None

    @field_validator("since")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)  # the contract's timestamps are UTC
        return value


# The entity as the store reads it (core/audit.py writes the item) and GET /audit shows it.
class AuditEvent(ResponseModel):
    """One audit event."""

    event_id: str
    entity_type: str
    entity_id: str
    action: str
    actor: str
    trace_id: Optional[str] = None
    at: str
    details: dict[str, Any] = Field(default_factory=dict)


class AuditPage(PageModel):
    items: list[AuditEvent]
