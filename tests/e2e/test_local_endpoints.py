"""The local stack's own surface (issue 8): CORS preflight, /_local/schedules, a port in use.

Against the real app on `python -m devstack` (the session's `devstack` fixture).
"""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from devstack.asgi import _is_loopback
from devstack.testing import REPO_ROOT
from tests.e2e.client import call

pytestmark = pytest.mark.e2e


def test_preflight_answers_204_with_the_allow_headers(devstack):
    reply = call(devstack.url, "OPTIONS", "/jobs", headers={
        "Origin": "https://ui.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"})
    assert reply.status == 204
    headers = {name.lower(): value for name, value in reply.headers.items()}
    assert headers["access-control-allow-origin"] == "*"
    assert {"GET", "POST", "OPTIONS"} <= set(headers["access-control-allow-methods"].split(","))
    assert {"authorization", "content-type", "idempotency-key"} <= set(
        headers["access-control-allow-headers"].lower().split(","))
    # ... and the actual responses carry the origin too, errors included.
    for path, key in (("/health", None), ("/jobs", None), ("/jobs", devstack.admin_api_key)):
        answer = call(devstack.url, "GET", path, key, headers={"Origin": "https://ui.example"})
        lowered = {name.lower(): value for name, value in answer.headers.items()}
        assert lowered.get("access-control-allow-origin") == "*", (path, answer.status, answer.headers)


def test_local_schedules_list_every_app_schedule_and_run_one_now(devstack):
    reply = call(devstack.url, "GET", "/_local/schedules")
    assert reply.status == 200
    schedules = {s["name"]: s for s in reply.json}
    assert schedules["jobs_lease_sweep"]["expression"] == "rate(1 minute)"
    assert schedules["jobs_lease_sweep"]["nextFireAt"].endswith("Z")

    ran = call(devstack.url, "POST", "/_local/schedules/jobs_lease_sweep/run")
    assert ran.status == 200
    assert ran.json["name"] == "jobs_lease_sweep" and ran.json["ok"] is True and "error" not in ran.json
    assert isinstance(ran.json["durationMs"], (int, float)) and ran.json["durationMs"] >= 0

    unknown = call(devstack.url, "POST", "/_local/schedules/no_such_schedule/run")
    assert unknown.status == 404 and unknown.json["error"]["code"] == "NOT_FOUND"


def test_local_endpoints_answer_loopback_clients_only():
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("127.0.0.2")
    assert not _is_loopback("192.168.1.20") and not _is_loopback("10.0.0.1") and not _is_loopback("")


def test_a_port_in_use_is_one_line_and_exit_status_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "devstack", "--port", str(port), "--no-state"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and f"127.0.0.1:{port}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
