"""Fleet configuration drift in the ops scan (ops/config_drift.py): one group per pool of an
organization, an agent counted once per desired version, only after CONFIG_DRIFT_MINUTES."""
from __future__ import annotations

import time

from chalicelib.core.context import Ctx
from chalicelib.ops import scan, store


def drift_groups(org_id: str) -> dict[str, dict]:
    """This org's drift groups by pool (the group key is `config-drift|pool P of org O|message`)."""
    out = {}
    for g in store.all_groups():
        _, subject, _ = g["key"].split("|", 2)
        if g["kind"] == "config-drift" and subject.endswith(f" of org {org_id}"):
            out[subject.removeprefix("pool ").removesuffix(f" of org {org_id}")] = g
    return out


def run(root):
    return scan.run(Ctx.system(root["orgId"]), "incremental", time.time() + 60, use_github=False)


def test_drift_is_an_ops_group_per_pool_after_the_drift_window(http, fleet, clock, root):
    ops, org = fleet.operator, fleet.org["orgId"]
    a, a_key = fleet.register("in-sync", pools=["edge-1"])
    b, _ = fleet.register("behind", pools=["edge-1", "edge-2"])
    c, _ = fleet.register("behind-too", pools=["edge-2"])
    d, _ = fleet.register("loner")
    for path in ("/config/pools/edge-1", "/config/pools/edge-2", f"/agents/{d}/config"):
        assert http.put(path, ops, {"desired": {"logLevel": "INFO"}, "expectedVersion": 0}).status == 200
    assert http.post(f"/agents/{a}/config/reported", a_key, {"version": 1, "status": "applied"}).status == 200

    clock.shift(29 * 60)  # inside CONFIG_DRIFT_MINUTES (30): not drift yet
    run(root)
    assert drift_groups(org) == {}

    clock.shift(2 * 60)
    run(root)
    groups = drift_groups(org)
    assert {pool: g["count"] for pool, g in groups.items()} == {"edge-1": 1, "edge-2": 2, "(no pool)": 1}
    samples = groups["edge-2"]["samples"]
    assert {s["where"]["agent"] for s in samples} == {b, c} and all(s["orgId"] == org for s in samples)
    assert {s["where"]["gateway"] for s in samples} == {"never reported"}
    assert "edge-2" in groups["edge-2"]["title"] and groups["edge-1"]["status"] == "open"

    run(root)  # still drifting, nothing new: counted once per desired version
    assert {p: g["count"] for p, g in drift_groups(org).items()} == {"edge-1": 1, "edge-2": 2, "(no pool)": 1}

    # a new version of edge-2: its agents drift again once the window has passed, edge-1 does not move
    assert http.put("/config/pools/edge-2", ops, {"desired": {"logLevel": "WARN"}, "expectedVersion": 1}).status == 200
    run(root)
    assert drift_groups(org)["edge-2"]["count"] == 2
    clock.shift(31 * 60)
    run(root)
    assert {p: g["count"] for p, g in drift_groups(org).items()} == {"edge-1": 2, "edge-2": 4, "(no pool)": 1}
    # edge-1 counted b again: b's desired version (edge-1 + edge-2) changed with edge-2's write


def test_a_gateway_that_catches_up_drifts_no_more_and_failed_reports_are_drift(http, fleet, clock, root):
    ops, org = fleet.operator, fleet.org["orgId"]
    a, a_key = fleet.register("late", pools=["late-pool"])
    b, b_key = fleet.register("broken", pools=["broken-pool"])
    for pool in ("late-pool", "broken-pool"):
        assert http.put(f"/config/pools/{pool}", ops, {"desired": {"logLevel": "INFO"}, "expectedVersion": 0}).status == 200
    assert http.post(f"/agents/{b}/config/reported", b_key,
                     {"version": 1, "status": "failed", "error": "cannot apply"}).status == 200
    clock.shift(31 * 60)
    assert http.post(f"/agents/{a}/config/reported", a_key, {"version": 1, "status": "applied"}).status == 200
    run(root)
    groups = drift_groups(org)
    assert set(groups) == {"broken-pool"} and groups["broken-pool"]["count"] == 1
    assert groups["broken-pool"]["samples"][0]["where"]["gateway"] == "reported 1 failed"


def test_an_agent_registered_after_the_change_gets_its_own_window(http, fleet, clock, root):
    ops, org = fleet.operator, fleet.org["orgId"]
    assert http.put("/config/pools/new-pool", ops, {"desired": {}, "expectedVersion": 0}).status == 200
    clock.shift(60 * 60)
    fleet.register("newcomer", pools=["new-pool"])
    run(root)
    assert drift_groups(org) == {}
    clock.shift(31 * 60)
    run(root)
    assert drift_groups(org)["new-pool"]["count"] == 1
