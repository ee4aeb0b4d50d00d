"""The logs domain's event payloads, built here only."""
from __future__ import annotations

from typing import Any

INSTANCE_LOG = "instance:log"


def instance_log(instance_id: str, agent_id: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One instance:log event: a group of public entries (rules.chunks keeps each under ~100 KB)."""
    return {"instanceId": instance_id, "agentId": agent_id, "entries": entries}
