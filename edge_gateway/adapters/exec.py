"""`exec`: run a command every `intervalSeconds` with a `timeoutSeconds` limit; its JSON output becomes records.

Spec: {name, type: "exec", table, command: [argv], intervalSeconds, timeoutSeconds}.

stdout is one JSON value (an object: one record; an array: one record per element) or JSON Lines
(one value per line). The command runs without a shell (argv as given). A command that exits
non-zero, runs past its timeout (killed), or prints something that is not JSON is a counted error
with its reason in /health; the adapter runs it again at the next interval.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from edge_gateway.adapters import AdapterConfigError, PeriodicAdapter, Sink

MAX_OUTPUT_BYTES = 4 * 1024 * 1024


class ExecAdapter(PeriodicAdapter):
    type_name = "exec"

    def __init__(self, name: str, spec: dict, sink: Sink):
        super().__init__(name, spec, sink)
        self.counters.update({"runs": 0, "timeouts": 0, "failedRuns": 0, "badOutput": 0})

    @classmethod
    def check(cls, spec: dict) -> None:
        command = spec.get("command")
        if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
            raise AdapterConfigError("command: a non-empty list of strings (argv) is required")
        program = command[0]
        if os.sep in program:
            if not (os.path.isfile(program) and os.access(program, os.X_OK)):
                raise AdapterConfigError(f"command: {program!r} does not exist or is not executable")
        elif shutil.which(program) is None:
            raise AdapterConfigError(f"command: {program!r} is not found on the gateway's PATH")

    def collect(self) -> list[Any]:
        self.count("runs")
        timeout = float(self.spec.get("timeoutSeconds", 10))
        try:
            done = subprocess.run(self.spec["command"], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                  check=False)
        except subprocess.TimeoutExpired:
            self.count("timeouts")
            raise TimeoutError(f"command ran past its {timeout:g} s timeout and was killed") from None
        except OSError as e:
            self.count("failedRuns")
            raise RuntimeError(f"command could not start: {e}") from None
        if done.returncode != 0:
            self.count("failedRuns")
            tail = done.stderr[-300:].decode("utf-8", "replace").strip()
            raise RuntimeError(f"command exited with status {done.returncode}: {tail}")
        try:
            return parse_output(done.stdout[:MAX_OUTPUT_BYTES])
        except ValueError as e:
            self.count("badOutput")
            raise ValueError(f"output is not JSON: {e}") from None


def parse_output(out: bytes) -> list[Any]:
    text = out.decode("utf-8", "replace").strip()
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]  # JSON Lines
    return value if isinstance(value, list) else [value]
