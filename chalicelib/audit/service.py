"""GET /audit: one Query of the narrowest partition the filters allow, newest first."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.audit import store
from chalicelib.audit.models import AuditPage
from chalicelib.core import ids, paging
from chalicelib.core.context import Ctx
from chalicelib.core.errors import ValidationError


@dataclass(frozen=True)
class ReadAudit:
    entity_type: str | None = None
    entity_id: str | None = None
    trace_id: str | None = None
    since: datetime | None = None
    limit: int = 50
    next_token: str | None = None


def read(ctx: Ctx, command: ReadAudit) -> AuditPage:
    if (command.entity_type is None) != (command.entity_id is None):
        missing = "entityId" if command.entity_id is None else "entityType"
        raise ValidationError.field(missing, "entityType and entityId go together")
    if command.entity_type is not None and command.entity_id is not None:
        selection = store.by_entity(ctx.org_id, command.entity_type, command.entity_id)
        trace_filter = command.trace_id  # one entity's history, narrowed to a trace
    elif command.trace_id is not None:
        selection, trace_filter = store.by_trace(ctx.org_id, command.trace_id), None
    else:
        selection, trace_filter = store.by_org(ctx.org_id), None
    since_id = None
    if command.since is not None:
        ms = int(command.since.timestamp() * 1000)
        if not 0 <= ms < 1 << 48:
            raise ValidationError.field("since", "out of range")
        since_id = ids.time_bound(ms, upper=False)
    scope = f"audit:{ctx.org_id}:{selection.pk}:{since_id}:{trace_filter}"
    events, last_key = store.query(selection, since_id, trace_filter, command.limit,
                                   paging.start_key(command.next_token, scope))
    return AuditPage(items=events, next_token=paging.next_token(last_key, scope))
