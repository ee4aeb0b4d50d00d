"""A property-based fuzzer (schemathesis) against the running stack's /openapi.json.

Every generated request, valid or not, must get a response that is not a 5xx
and that matches the documented schema for its status code.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.client import call

pytestmark = pytest.mark.e2e
ST = str(Path(sys.executable).with_name("st"))


def fuzz(devstack, key: str, examples: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ST, "run", f"{devstack.url}/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
         "--header", f"Authorization: Bearer {key}",
         "--max-examples", str(examples), "--seed", "20261122", "--request-timeout", "30",
         "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("scope", ["admin", "operator"])
def test_no_5xx_and_every_response_matches_the_schema(devstack, scope):
    org = call(devstack.url, "POST", "/orgs", devstack.admin_api_key, {"name": f"fuzz {scope}"}).json
    key = org["adminKey"]
    if scope == "operator":
        key = call(devstack.url, "POST", "/keys", key, {"name": "fuzz", "scope": "operator"}).json["apiKey"]
    result = fuzz(devstack, key, examples=15)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
