"""A cold start imports what route registration needs and nothing more (bench/cold_import.py).

Routes name their models by string and reach their service through a lazy
module (chalicelib/core/lazy.py); this checks, in a fresh interpreter as a
Lambda cold start is, that importing app.py leaves pydantic and every
domain's models, services and stores unimported, and that every name an
endpoint gives resolves to a model.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chalicelib.core.lazy import lazy

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, re, sys
import app
cold = sorted(m for m in sys.modules if m == "pydantic" or re.fullmatch(r"chalicelib\\.\\w+\\.(models|service|store)", m))
import pydantic
from chalicelib.core.api import ENDPOINTS
bad = []
for ep in ENDPOINTS:
    for kind, ref, value in (("body", ep.body_ref, ep.body), ("query", ep.query_ref, ep.query)):
        if ref is not None and not (isinstance(value, type) and issubclass(value, pydantic.BaseModel)):
            bad.append(f"{ep.method} {ep.path} {kind}={ref!r}")
    if ep.response_ref is not None and ep.response is None:
        bad.append(f"{ep.method} {ep.path} response={ep.response_ref!r}")
print(json.dumps({"cold": cold, "endpoints": len(ENDPOINTS), "bad": bad}))
"""


def test_app_import_leaves_pydantic_and_the_domains_unimported_and_every_model_name_resolves():
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_DEFAULT_REGION": "us-east-1",
           "STACK_NAME": "cp-cold", "OUTBOX_STREAM_ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/"
                                                       "cp-cold-outbox/stream/2026-01-01T00:00:00.000"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["cold"] == []
    assert result["endpoints"] > 50
    assert result["bad"] == []


def test_a_lazy_module_imports_on_first_attribute_read(tmp_path, monkeypatch):
    (tmp_path / "cold_import_probe.py").write_text("ANSWER = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cold_import_probe", raising=False)
    module = lazy("cold_import_probe")
    assert "cold_import_probe" not in sys.modules
    assert module.ANSWER == 42
    assert "cold_import_probe" in sys.modules and "(imported)" in repr(module)
    monkeypatch.delitem(sys.modules, "cold_import_probe")
