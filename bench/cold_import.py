"""Cold import time of app.py beside a bare Chalice + boto3 app, measured in the same run.

Each sample is a fresh interpreter (as a Lambda cold start is) importing the
module; the median of N samples is printed, with the spread, and the ratio of
the medians (target: at most 1.5x). Samples of the two alternate, so load on a
shared machine hits both alike. The environment is a deployed function's: the
stack's names and stream ARN set (app.py wires them at import).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, table

SAMPLES = 15
TARGET_RATIO = 1.5
ENV = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "0",
       "STACK_NAME": "controlplane-bench",
       "OUTBOX_STREAM_ARN":
           "arn:aws:dynamodb:us-east-1:123456789012:table/controlplane-bench-outbox/stream/2026-01-01T00:00:00.000"}
BARE_APP = """
import boto3
from chalice import Chalice
app = Chalice(app_name="bare")

@app.route("/")
def index():
    return {"hello": "world"}
"""
# CPU time of the importing process: on a shared machine wall time mostly measures the neighbours.
PROBE = "import time, sys; t = time.process_time(); import {module}; print(time.process_time() - t)"


def sample(module: str, cwd: Path) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=cwd, capture_output=True,
                         text=True, check=True, env=ENV)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        modules = {"app.py (control plane)": ("app", ROOT), "bare Chalice + boto3": ("bare_app", Path(tmp))}
        for module, cwd in modules.values():
            sample(module, cwd)  # warm the bytecode cache, as a deployed package has .pyc files
        results: dict[str, list[float]] = {name: [] for name in modules}
        for _ in range(SAMPLES):
            for name, (module, cwd) in modules.items():
                results[name].append(sample(module, cwd))
    rows = [(name, f"{statistics.median(v) * 1000:.0f} ms", f"{min(v) * 1000:.0f}-{max(v) * 1000:.0f} ms")
            for name, v in results.items()]
    app_ms, bare_ms = (statistics.median(v) for v in results.values())
    print(f"Cold import (CPU time), median of {SAMPLES} fresh interpreters (alternating)\n")
    print(table(rows, ("module", "median", "range")))
    print(f"\nratio app / bare: {app_ms / bare_ms:.2f}x (target <= {TARGET_RATIO}x)")


if __name__ == "__main__":
    main()
