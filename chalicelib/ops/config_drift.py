"""Fleet configuration drift as a failure source of the ops scan (one Source per organization).

An active agent whose gateway has not reported its desired configuration version (or reported it
failed) for longer than CONFIG_DRIFT_MINUTES after the latest change of that configuration
(fleetconfig/service.py `drifting`, the rule in fleetconfig/rules.py) is one failure per pool it
belongs to ("no pool" when it has none); the group key is the pool and its organization, so each
pool is one ops group, one GitHub issue.

Drift is a state, not an event: a scan sees it again each time until the gateway catches up. The
cursor is `{since}#{agentId}#{version}#{pool}` (`since`: when the desired configuration last
changed), so a drift counts once per desired version: an incremental scan counts what became
drift since its watermark, and a full one counts only what a lost group needs rebuilt.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.ops import rules
from chalicelib.ops.rules import Failure
from chalicelib.ops.sources import Page, Source

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx

NO_POOL = "(no pool)"
MESSAGE = "gateway configuration drift: the desired version was not reported applied within CONFIG_DRIFT_MINUTES"


def source(ctx: "Ctx") -> Source:
    from chalicelib.fleetconfig import service as fleetconfig

    def read(after: str | None, limit: int) -> Page:
        threshold = ctx.iso(ctx.now() - ctx.settings.config_drift_minutes * 60)
        failures: list[Failure] = []
        for drift in fleetconfig.drifting(ctx, threshold):
            reported = drift.reported
            state = (f"reported {reported.version} {reported.status}" if reported is not None else "never reported")
            for pool in drift.pools or [NO_POOL]:
                cursor = f"{drift.since}#{drift.agent_id}#{drift.version:015d}#{pool}"
                if after is not None and cursor <= after:
                    continue
                # One message for every drift (it is part of the fingerprint): what differs goes in `where`.
                failures.append(Failure(
                    rules.CONFIG_DRIFT, f"{drift.agent_id}@{drift.version}", drift.since, MESSAGE, ctx.org_id,
                    f"pool {pool} of org {ctx.org_id}", None, cursor,
                    (("agent", drift.agent_id), ("agent name", drift.agent_name), ("pool", pool),
                     ("desired version", str(drift.version)), ("gateway", state))))
        failures.sort(key=lambda f: f.cursor)
        page = failures[:limit]
        return Page(page, page[-1].cursor if page else None, len(page), len(failures) > limit)

    return Source(f"{rules.CONFIG_DRIFT}#{ctx.org_id}", read)


def sources(ctx: "Ctx", org_ids: list[str]) -> list[Source]:
    """One drift source per organization, each read by the system acting for that organization."""
    from chalicelib.core.context import Ctx

    return [source(Ctx.system(org_id, trace_id=ctx.trace_id)) for org_id in org_ids]
