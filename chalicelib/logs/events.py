"""The logs domain's event payloads, built here only."""
from __future__ import annotations

from typing import Any

from chalicelib.instances.store import Instance

INSTANCE_LOG = "instance:log"


def instance_log(instance: Instance, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One instance:log event: a group of public entries (rules.chunks keeps each under ~100 KB)."""
    return {"instanceId": instance.instance_id, "agentId": instance.agent_id, "entries": entries}
