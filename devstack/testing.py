"""Run the local stack as a subprocess for tests: ``with running_devstack() as stack: ...``.

A subprocess, not a thread: the stack sets process-wide environment
variables, imports the app once and owns its signals, exactly as it does when
a developer runs ``python -m devstack``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Devstack:
    info: dict[str, Any]
    log_path: Path
    ready_file: Path
    process: subprocess.Popen = field(repr=False)
    returncode: int | None = None  # set once the stack has stopped
    _final_log: str | None = field(default=None, repr=False)  # the log outlives its temporary directory

    @property
    def url(self) -> str:
        return self.info["url"]

    @property
    def ws_url(self) -> str:
        return self.info["wsUrl"]

    @property
    def tls_url(self) -> str:
        """The mutual-TLS port (gateway certificates; devstack/tls.py)."""
        return self.info["tlsUrl"]

    @property
    def server_ca_path(self) -> str:
        """The local server CA a TLS client trusts."""
        return self.info["serverCaPath"]

    @property
    def moto_url(self) -> str:
        return self.info["motoUrl"]

    @property
    def admin_api_key(self) -> str | None:
        return self.info.get("adminApiKey")

    @property
    def org_id(self) -> str | None:
        return self.info.get("orgId")

    @property
    def environment(self) -> dict[str, str]:
        """The app's environment: table names, queue URLs, stream ARN."""
        return self.info["environment"]

    def aws(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for the stack's embedded moto."""
        return boto3.client(service, endpoint_url=self.moto_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing", **kwargs)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        """Signal the stack and wait for it (kill it after `timeout`); returns its exit code. Idempotent."""
        if self.returncode is None:
            if self.process.poll() is None:
                self.process.send_signal(sig)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.returncode = self.process.returncode
            self._final_log = self.log_path.read_text(errors="replace")
        return self.returncode

    def log_tail(self, lines: int = 60) -> str:
        text = self._final_log if self._final_log is not None else self.log_path.read_text(errors="replace")
        return _last_lines(text, lines)


def _own_credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment with the stack's own credentials (the ones `client()` signs with).

    A test process may hold other credentials in its environment at that moment (moto's
    mock_aws sets its own while active, a developer's shell a session token); the stack's
    SigV4 checks on /@connections would then expect those, and a client of the stack's
    documented credentials would be refused.
    """
    own = {k: v for k, v in environ.items() if k not in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")}
    own.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return own


@contextmanager
def running_devstack(app_module: str = "app", env: dict[str, str] | None = None,
                     timeout: float = 60, state_dir: Path | None = None, fresh: bool = False,
                     port: int = 0, log_file: Path | None = None) -> Iterator[Devstack]:
    """Start ``python -m devstack`` on a free port, yield once it serves, stop it with SIGINT.

    Without `state_dir` the stack keeps nothing on disk (each test starts
    empty); with it, the stack loads and saves its state there, as `make run` does.
    With `log_file` the stack's output is appended there and outlives the run
    (a test that restarts the stack keeps every run's log, tracebacks included);
    without it, it goes to a temporary file.
    """
    with tempfile.TemporaryDirectory(prefix="devstack-") as tmp:
        ready_file, log_path = Path(tmp) / "ready.json", log_file or Path(tmp) / "devstack.log"
        state_args = ["--state-dir", str(state_dir)] if state_dir else ["--no-state"]
        with open(log_path, "ab" if log_file else "wb") as log:
            if log_file:
                log.write(f"--- devstack starting (port {port}, state {state_dir}) ---\n".encode())
                log.flush()
            process = subprocess.Popen(
                [sys.executable, "-m", "devstack", "--app", app_module, "--port", str(port), "--ready-file", str(ready_file),
                 *state_args, *(["--fresh"] if fresh else [])],
                cwd=REPO_ROOT,
                # TLS_PORT 0: the mutual-TLS port on a free port too (devstack/tls.py).
                env={**_own_credentials(os.environ), "PYTHONUNBUFFERED": "1", "TLS_PORT": "0",
                     "DEVSTACK_TLS_DIR": str(Path(tmp) / "tls"), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                info = _wait_ready(process, ready_file, log_path, timeout)
            except BaseException:
                process.kill()
                process.wait()
                raise
            stack = Devstack(info, log_path, ready_file, process)
            try:
                yield stack
            finally:
                stack.stop()


def _wait_ready(process: subprocess.Popen, ready_file: Path, log_path: Path, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if process.poll() is not None:
            raise RuntimeError(f"devstack exited with {process.returncode} before it was ready:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"devstack not ready after {timeout} s:\n{_tail(log_path)}")
        time.sleep(0.1)
    return json.loads(ready_file.read_text())


def _tail(path: Path, lines: int = 60) -> str:
    return _last_lines(path.read_text(errors="replace"), lines)


def _last_lines(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])
