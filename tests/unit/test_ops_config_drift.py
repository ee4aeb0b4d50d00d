"""The drift source of the ops scan without AWS: one fingerprint per pool of an org, cursors, paging."""
from __future__ import annotations

from chalicelib.core import clock
from chalicelib.fleetconfig import service as fleetconfig
from chalicelib.fleetconfig.rules import Reported
from chalicelib.ops import config_drift, rules
from tests.unit.fakes import fake_ctx


def _failure(subject: str) -> rules.Failure:
    return rules.Failure(rules.CONFIG_DRIFT, "A@1", "2026-01-01T00:00:00.000Z", config_drift.MESSAGE, "O1", subject)


def test_pools_that_differ_only_in_digits_or_org_are_different_groups():
    fps = {rules.fingerprint(_failure(s)) for s in ("pool edge-1 of org O1", "pool edge-2 of org O1",
                                                     "pool edge-1 of org O2")}
    assert len(fps) == 3
    assert rules.fingerprint(_failure("pool edge-1 of org O1")) == rules.fingerprint(_failure("pool edge-1 of org O1"))


def test_the_source_pages_after_its_cursor(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: 1_800_000_000.0)
    drifts = [fleetconfig.Drift("A1", "a1", ["p1", "p2"], 3, None, "2026-01-01T00:00:00.000Z"),
              fleetconfig.Drift("A2", "a2", [], 1, Reported(1, "failed", "t"), "2026-01-02T00:00:00.000Z")]
    seen = {}

    def drifting(ctx, threshold):
        seen["threshold"] = threshold
        return drifts

    monkeypatch.setattr(fleetconfig, "drifting", drifting)
    ctx, _ = fake_ctx()
    source = config_drift.source(ctx)
    first = source.read(None, 2)
    assert [f.where[2][1] for f in first.failures] == ["p1", "p2"] and first.more
    assert seen["threshold"] == clock.iso(1_800_000_000.0 - 30 * 60)
    rest = source.read(first.cursor, 2)
    assert [(f.source_id, dict(f.where)["pool"], dict(f.where)["gateway"]) for f in rest.failures] == [
        ("A2@1", config_drift.NO_POOL, "reported 1 failed")]
    assert not rest.more and source.read(rest.cursor, 2).failures == []
    assert {f.message for f in first.failures + rest.failures} == {config_drift.MESSAGE}
