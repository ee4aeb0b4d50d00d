"""Cold import time of app.py beside a bare Chalice + boto3 app, measured in the same run.

Each sample is a fresh interpreter (as a Lambda cold start is) importing the
module; the median of N samples is printed, with the spread.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, table

SAMPLES = 9
BARE_APP = """
import boto3
from chalice import Chalice
app = Chalice(app_name="bare")

@app.route("/")
def index():
    return {"hello": "world"}
"""
PROBE = "import time, sys; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def sample(module: str, cwd: Path) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=cwd, capture_output=True,
                         text=True, check=True, env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1",
                                                     "PYTHONDONTWRITEBYTECODE": "0"})
    return float(out.stdout.strip().splitlines()[-1])


def measure(module: str, cwd: Path) -> list[float]:
    sample(module, cwd)  # warm the bytecode cache, as a deployed package has .pyc files
    return [sample(module, cwd) for _ in range(SAMPLES)]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        results = {"app.py (control plane)": measure("app", ROOT), "bare Chalice + boto3": measure("bare_app", Path(tmp))}
    rows = [(name, f"{statistics.median(v) * 1000:.0f} ms", f"{min(v) * 1000:.0f}-{max(v) * 1000:.0f} ms")
            for name, v in results.items()]
    print(f"Cold import, median of {SAMPLES} fresh interpreters\n")
    print(table(rows, ("module", "median", "range")))


if __name__ == "__main__":
    main()
