"""Session retention end to end: the local stack with a retention of a few seconds, the schedule
fired through the stack's schedule endpoint, a real WebSocket client watching.

Old pending and active sessions become expired; completed, failed and
client-expired ones stay untouched; a session younger than the retention
stays pending; a second run changes nothing; the WebSocket client saw one
session:updated per expiry, and the audit trail names the actor `system`.
"""
from __future__ import annotations

import json
import time

import pytest

from devstack.testing import running_devstack
from tests.e2e.client import call, next_event, ws_connect

pytestmark = pytest.mark.e2e

RETENTION_SECONDS = 4


@pytest.fixture(scope="module")
def stack():
    with running_devstack(app_module="app", env={"SESSION_RETENTION_DAYS": str(RETENTION_SECONDS / 86400)}) as s:
        yield s


SCHEDULES = "/_local/schedules"  # the local stack's schedule endpoint (the contract's path)


def run_schedule(stack, name: str) -> dict:
    """Fire a scheduled handler now; answers once it finished."""
    r = call(stack.url, "POST", f"{SCHEDULES}/{name}/run")
    assert r.status == 200 and r.json["ok"], r.json
    return r.json


def test_retention_expires_old_open_sessions_only(stack):
    org = call(stack.url, "POST", "/orgs", stack.admin_api_key, {"name": "retention"}).json
    ops = call(stack.url, "POST", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"}).json["apiKey"]
    conn = ws_connect(stack.url, ops)
    assert next_event(conn)["event"] == "system:connected"

    def session(*moves: str) -> dict:
        s = call(stack.url, "POST", "/sessions", ops, {"agentRole": "r"}).json
        for status in moves:
            r = call(stack.url, "PUT", f"/sessions/{s['sessionId']}", ops, {"status": status})
            assert r.status == 200, r.json
            s = r.json
        return s

    old = {"pending": session(), "active": session("active"), "completed": session("active", "completed"),
           "failed": session("active", "failed"), "expired": session("expired")}
    created_at = time.monotonic()
    # Age the sessions past the retention (the one wait in this test: the retention is wall-clock age).
    time.sleep(max(0.0, RETENTION_SECONDS + 0.5 - (time.monotonic() - created_at)))
    young = session()
    before = {name: call(stack.url, "GET", f"/sessions/{s['sessionId']}", ops).json for name, s in old.items()}

    # Drain the events of the setup, then fire the schedule.
    seen_before = _events(conn, quiet=1.0)
    assert all(e["event"] == "session:updated" for e in seen_before)
    run_schedule(stack, "expire_sessions")
    # Safe to run twice: the second run (right away, before `young` ages) changes and emits nothing
    # (checked below: exactly one event per expiry over both runs, counters unchanged).
    run_schedule(stack, "expire_sessions")

    after = {name: call(stack.url, "GET", f"/sessions/{s['sessionId']}", ops).json for name, s in old.items()}
    assert after["pending"]["status"] == "expired" and after["active"]["status"] == "expired"
    for name in ("completed", "failed", "expired"):
        assert after[name] == before[name]  # untouched, updatedAt included
    assert call(stack.url, "GET", f"/sessions/{young['sessionId']}", ops).json["status"] == "pending"

    updates = _events(conn, quiet=1.5)
    expired_ids = {old["pending"]["sessionId"], old["active"]["sessionId"]}
    got = [e for e in updates if e["event"] == "session:updated"]
    # exactly one event per expiry, over both runs
    assert sorted(e["data"]["sessionId"] for e in got) == sorted(expired_ids), updates
    assert all(e["data"]["status"] == "expired" for e in got)

    for sid in expired_ids:
        trail = call(stack.url, "GET", f"/audit?entityType=session&entityId={sid}", ops).json["items"]
        assert trail[0]["action"] == "expired" and trail[0]["actor"] == "system"
    listed = call(stack.url, "GET", "/sessions?status=expired", ops).json
    assert listed["total"] == 3 and call(stack.url, "GET", "/sessions", ops).json["total"] == 6
    conn.close()


def _events(conn, quiet: float) -> list[dict]:
    """Every message until none arrives for `quiet` seconds (the fan-out is asynchronous)."""
    seen = []
    while True:
        try:
            seen.append(json.loads(conn.recv(timeout=quiet)))
        except TimeoutError:
            return seen
