"""Events with no state change beside them, written through a unit of work.

The outbox item itself is built in chalicelib/core/outbox.py (re-exported
here for the domains that still import it from this module); an event that
describes a change rides in that change's unit of work (`tx.emit`), never here.
"""
from __future__ import annotations

from typing import Any

from chalicelib.core.context import Ctx
from chalicelib.core.outbox import event_item, event_put, item_put

__all__ = ["emit", "emit_many", "event_item", "event_put"]


def emit(org_id: str, name: str, data: dict[str, Any], agent_id: str | None = None,
         connection_id: str | None = None, ctx: Ctx | None = None) -> None:
    """An event with no state change beside it (one PutItem through the unit of work)."""
    tx = (ctx or Ctx.system(org_id)).for_org(org_id).tx()
    tx.emit(name, data, agent_id=agent_id, connection_id=connection_id)
    tx.commit()


def emit_many(items: list[dict[str, Any]], ctx: Ctx | None = None) -> None:
    """Events built with `event_item`, written with no state change beside them (a bulk unit of work:
    BatchWriteItem, 25 per call, no atomicity)."""
    tx = (ctx or Ctx.system()).bulk()
    for index, item in enumerate(items):
        tx.put(f"event:{index}", item_put(item))
    tx.commit()
