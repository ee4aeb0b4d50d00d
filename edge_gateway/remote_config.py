"""The configuration document from the control plane, applied without a restart.

- Fetched (GET /agents/{agentId}/config) at start, after every WebSocket (re)connect, on a
  `config:changed` event (a hint only) and on a slow poll (GATEWAY_CONFIG_POLL_SECONDS).
- Validated with fleet_config's models (the same that validate the control plane's PUT), then
  checked against this host (every adapter type installed, each adapter's own check: an exec
  command that exists, a tail directory that can be read, ...). Only then is anything changed:
  adapters started, stopped or reconfigured; uplink batch and linger; buffer cap and full policy;
  the log level.
- A document applied is written to disk (GATEWAY_CONFIG_FILE, default `<buffer>.config.json`;
  written to a temporary file, fsynced, renamed), so the gateway starts from it without the control
  plane. One that cannot be validated or applied is reported failed, and the last good one stays in
  force.
- The outcome is reported: POST /agents/{agentId}/config/reported {version, status, error?}; a report
  that did not get through is sent again at the next fetch.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import fleet_config
from edge_gateway.adapters import AdapterConfigError
from edge_gateway.client import Unreachable

if TYPE_CHECKING:
    from edge_gateway.gateway import Gateway

log = logging.getLogger("edge_gateway.config")

PYTHON_LEVELS = {"DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING", "WARNING": "WARNING", "ERROR": "ERROR"}
MAX_ERROR_CHARS = 1000


class CannotApply(Exception):
    """The document is invalid, or valid but not applicable on this gateway (the message says why)."""


def validate(desired: Any) -> dict:
    """The document through fleet_config's model (unknown keys refused); answers it as plain JSON."""
    try:
        document = fleet_config.parse(desired).document()
    except fleet_config.ConfigError as e:
        raise CannotApply(f"invalid document: {e}") from None
    if any(isinstance(a, dict) and a.get("remove") for a in document.get("adapters") or []):
        raise CannotApply("invalid document: a merged document holds no adapter removals")
    # an explicit null (a layer's way to remove a setting) means the gateway's default, as absence does
    return {key: value for key, value in document.items() if value is not None}


class RemoteConfig:
    def __init__(self, gateway: "Gateway", path: str, poll_seconds: float):
        self.gateway = gateway
        self.path = path
        self.poll_seconds = poll_seconds
        self.applied_version: int | None = None
        self.applied: dict | None = None
        self.applied_at: float | None = None
        self.failed: tuple[int, str] | None = None   # the last version refused, and why
        self.unreported: dict | None = None          # a report that did not get through yet
        self.last_fetch: float | None = None
        self.last_error: str | None = None
        self.fetches = 0
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- start: the last good document -------------------------------------------------

    def load_last_good(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                saved = json.load(f)
            version, desired = int(saved["version"]), saved["desired"]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.error("the last good configuration in %s cannot be read (%s): starting without it", self.path, e)
            return
        try:
            self.apply(validate(desired))
        except CannotApply as e:
            log.error("the last good configuration (version %s) cannot be applied now: %s", version, e)
            return
        self.applied_version, self.applied, self.applied_at = version, desired, time.time()
        log.info("configuration version %s applied from %s", version, self.path)

    # --- fetching ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="config", daemon=True)
        self._thread.start()
        self.request_fetch()

    def stop(self) -> None:
        self._stop.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def request_fetch(self, *_: Any) -> None:
        self._wanted.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wanted.wait(self.poll_seconds)
            self._wanted.clear()
            if self._stop.is_set():
                return
            try:
                self.fetch()
            except Exception as e:  # noqa: BLE001 - the loop carries on; the next fetch tries again
                log.exception("configuration fetch failed")
                self.last_error = f"{type(e).__name__}: {e}"

    def fetch(self) -> str:
        """Fetch, apply if new, report. Answers what happened (for tests and logs)."""
        with self._lock:
            agent_id = self.gateway.agent_id()
            if not agent_id:
                self.last_error = "agent id unknown yet (the control plane has not answered)"
                return "no-agent"
            try:
                reply = self.gateway.cp.request("GET", f"/agents/{agent_id}/config")
            except Unreachable as e:
                self.last_error = str(e)
                return "unreachable"
            self.fetches += 1
            self.last_fetch = time.time()
            body = reply.json()
            if reply.status != 200 or not isinstance(body, dict) or not isinstance(body.get("version"), int):
                self.last_error = f"GET config: {reply.status}"
                return "error"
            version, desired, reported = body["version"], body.get("desired") or {}, body.get("reported")
            if version == self.applied_version:
                outcome, report = "unchanged", {"version": version, "status": "applied"}
            elif self.failed is not None and self.failed[0] == version:
                outcome, report = "unchanged", {"version": version, "status": "failed", "error": self.failed[1]}
            else:
                try:
                    document = validate(desired)
                    self.apply(document)
                except CannotApply as e:
                    error = str(e)[:MAX_ERROR_CHARS]
                    self.failed = (version, error)
                    self.gateway.metrics.config_applies.labels("failed").inc()
                    log.error("configuration version %s not applied (version %s stays in force): %s", version,
                              self.applied_version, error)
                    outcome, report = "failed", {"version": version, "status": "failed", "error": error}
                else:
                    self._save(version, desired)
                    self.applied_version, self.applied, self.applied_at = version, desired, time.time()
                    self.failed = None
                    self.gateway.metrics.config_applies.labels("applied").inc()
                    log.info("configuration version %s applied", version)
                    outcome, report = "applied", {"version": version, "status": "applied"}
            if not _reported_matches(reported, report):
                self._report(agent_id, report)
            return outcome

    def _report(self, agent_id: str, report: dict) -> None:
        try:
            reply = self.gateway.cp.request("POST", f"/agents/{agent_id}/config/reported", report)
        except Unreachable as e:
            self.unreported, self.last_error = report, f"report: {e}"
            return
        if reply.status >= 300:
            self.unreported, self.last_error = report, f"report: {reply.status}"
            return
        self.unreported = None

    # --- applying ------------------------------------------------------------------------

    def apply(self, document: dict) -> None:
        """Check everything first (CannotApply: nothing changed), then change the running gateway."""
        g = self.gateway
        adapters = document.get("adapters") or []
        try:
            g.adapters.plan(adapters)
        except AdapterConfigError as e:
            raise CannotApply(str(e)) from None
        c = g.config
        level = PYTHON_LEVELS.get(str(document.get("logLevel") or c.log_level).upper(), "INFO")
        uplink = document.get("uplink") or {}
        buffer = document.get("buffer") or {}
        logging.getLogger("edge_gateway").setLevel(level)
        g.uplink.batch_records = int(uplink.get("batchRecords") or c.batch_records)
        g.uplink.current_batch = min(g.uplink.current_batch, g.uplink.batch_records) or g.uplink.batch_records
        linger_ms = uplink.get("lingerMs")
        g.uplink.idle_interval = c.linger_seconds if linger_ms is None else float(linger_ms) / 1000
        max_mb = buffer.get("maxDbMb")
        on_full = buffer.get("onFull")
        g.buffer.set_limits(int(float(c.max_db_mb if max_mb is None else max_mb) * 1024 * 1024),
                            c.drop_oldest if on_full is None else on_full == "drop-oldest")
        try:
            g.adapters.apply(adapters)
        except AdapterConfigError as e:  # changed on disk between the check and now
            raise CannotApply(str(e)) from None

    def _save(self, version: int, desired: dict) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": version, "desired": desired, "savedAt": _iso(time.time())}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        directory = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def status(self) -> dict:
        return {"appliedVersion": self.applied_version, "appliedAt": _iso(self.applied_at),
                "failedVersion": self.failed[0] if self.failed else None,
                "failedError": self.failed[1] if self.failed else None,
                "lastFetch": _iso(self.last_fetch), "fetches": self.fetches, "lastError": self.last_error,
                "reportPending": self.unreported is not None, "file": self.path}


def _reported_matches(reported: Any, report: dict) -> bool:
    if not isinstance(reported, dict):
        return False
    return reported.get("version") == report["version"] and reported.get("status") == report["status"]


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
