"""Device adapters: sources of records that run inside the gateway (docs/GATEWAY.md, "Adapters").

An adapter type is a class registered under the entry-point group `edge_gateway.adapters`
(the built-ins `tail`, `exec` and `prometheus` too: pyproject.toml declares them, and the
checkout carries the same declaration as `edge_gateway-0.dist-info/` so a gateway run from the
checkout finds them). A third-party package adds a type by declaring its own entry point; the
gateway is not touched.

Each configured adapter (an entry of the configuration document's `adapters`) is one instance,
running in its own thread(s); a failure inside it is caught, counted and shown in its state,
never raised into the gateway or another adapter.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from importlib.metadata import entry_points
from typing import Any, Callable, ClassVar

from edge_gateway.buffer import ROW_OVERHEAD, Buffer, BufferFull, Closed, Record

log = logging.getLogger("edge_gateway.adapters")

GROUP = "edge_gateway.adapters"
COMMON_KEYS = ("name", "type", "table")


class AdapterConfigError(ValueError):
    """The adapter's part of a configuration document cannot be applied here (named in the report)."""


class Sink:
    """Where an adapter's records go: the gateway's buffer, durable before `store` returns."""

    def __init__(self, buffer: Buffer):
        self.buffer = buffer

    def records(self, table: str, values: list[Any]) -> list[Record]:
        """Records of `table` from JSON-able values."""
        return self.records_from_json(table, [json.dumps(value, separators=(",", ":")) for value in values])

    @staticmethod
    def rows_from_json(table: str, texts: list[str]) -> list[tuple[str, str, str, str, int]]:
        """Buffer rows (Buffer.store_rows_with) from ASCII JSON texts, ids as records_from_json makes them."""
        now = time.time()
        ms = int(now * 1000)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{ms % 1000:03d}Z"
        prefix = f"{ms:012x}"
        noise = os.urandom(10 * len(texts)).hex()
        fixed = len(table) + 32 + ROW_OVERHEAD  # Record.bytes: data + table + id (32 hex) + overhead
        return [(prefix + noise[20 * i:20 * i + 20], table, text, ts, len(text) + fixed) for i, text in enumerate(texts)]

    @staticmethod
    def records_from_json(table: str, texts: list[str]) -> list[Record]:
        """Records from ASCII JSON texts; ids as the gateway's stores make them (48-bit ms time + 80 random bits)."""
        now = time.time()
        ms = int(now * 1000)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{ms % 1000:03d}Z"
        prefix = f"{ms:012x}"
        noise = os.urandom(10 * len(texts)).hex()
        return [Record(prefix + noise[20 * i:20 * i + 20], table, text, ts) for i, text in enumerate(texts)]

    def store(self, table: str, values: list[Any]) -> int:
        """Buffer `values` as records of `table`; BufferFull / Closed propagate to the adapter."""
        if not values:
            return 0
        return self.buffer.store(self.records(table, values)).stored


class Adapter:
    """The interface. Subclasses set `type_name`, implement `check` (raise AdapterConfigError for a spec
    that cannot run here), `start`, `stop`, and may override `reconfigure` (default: stop, then start).

    `self.counters` (name -> int) become `gateway_adapter_events_total{adapter,type,event}` in /metrics;
    `state()` is the adapter's entry in /health."""

    type_name: ClassVar[str] = ""

    def __init__(self, name: str, spec: dict, sink: Sink):
        self.name = name
        self.spec = spec
        self.sink = sink
        self.counters: dict[str, int] = {"records": 0, "errors": 0}
        self.status = "stopped"      # stopped | running | failing
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def check(cls, spec: dict) -> None:
        """Raise AdapterConfigError when `spec` cannot be applied on this host (before anything changes)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def reconfigure(self, spec: dict) -> None:
        self.stop()
        self.spec = spec
        self.start()

    # --- helpers for subclasses --------------------------------------------------

    @property
    def table(self) -> str:
        return str(self.spec["table"])

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def error(self, message: str) -> None:
        """A counted failure: the adapter carries on (state `failing` until its next success)."""
        self.count("errors")
        self.last_error, self.last_error_at = message[:500], time.time()
        self.status = "failing"
        log.warning("adapter %s (%s): %s", self.name, self.type_name, message[:500])

    def ok(self) -> None:
        if self.status == "failing":
            self.status = "running"

    def state(self) -> dict:
        return {"type": self.type_name, "status": self.status, "table": self.spec.get("table"),
                "counters": self.counters.copy(), "lastError": self.last_error,
                "lastErrorAt": _iso(self.last_error_at)}


class PeriodicAdapter(Adapter):
    """An adapter that does one thing every `intervalSeconds` in its own thread (exec, prometheus)."""

    def __init__(self, name: str, spec: dict, sink: Sink):
        super().__init__(name, spec, sink)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop = threading.Event()
        self.status = "running"
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name=f"adapter-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=float(self.spec.get("timeoutSeconds", 5)) + 5)
        self.status = "stopped"

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                values = self.collect()
                self.sink.store(self.table, values)
                self.count("records", len(values))
                self.ok()
            except BufferFull as e:
                self.count("refused", 1)
                self.error(f"buffer full: {e}")
            except Closed:
                return
            except Exception as e:  # noqa: BLE001 - isolation: an adapter's failure is its own
                self.error(f"{type(e).__name__}: {e}")
            stop.wait(float(self.spec.get("intervalSeconds", 60)))

    def collect(self) -> list[Any]:
        raise NotImplementedError


def installed_types() -> dict[str, Callable[..., Adapter]]:
    """type name -> class, from the entry points (read afresh: a package installed since is seen)."""
    found: dict[str, Callable[..., Adapter]] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            continue  # the first on sys.path wins, as for imports
        try:
            found[ep.name] = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken third-party package must not stop the gateway
            log.error("adapter type %s (%s) cannot be loaded: %s", ep.name, ep.value, e)
    return found


class AdapterHost:
    """The running adapters, changed as a whole to match a configuration document's `adapters`."""

    def __init__(self, sink: Sink):
        self.sink = sink
        self.adapters: dict[str, Adapter] = {}
        self._lock = threading.Lock()

    def plan(self, specs: list[dict]) -> list[tuple[str, str, dict, type | None]]:
        """Check every spec; answer the steps [(action, name, spec, cls)] or raise AdapterConfigError.
        Nothing is changed here: a document that cannot be applied leaves the running adapters alone."""
        types = installed_types()
        wanted: dict[str, dict] = {}
        for index, spec in enumerate(specs):
            name = spec.get("name")
            if not isinstance(name, str) or not name:
                raise AdapterConfigError(f"adapters.{index}.name: required")
            if name in wanted:
                raise AdapterConfigError(f"adapters.{index}.name: {name!r} appears twice")
            kind = spec.get("type")
            cls = types.get(str(kind))
            if cls is None:
                raise AdapterConfigError(f"adapters.{index}.type: adapter type {kind!r} is not installed on this "
                                         f"gateway (installed: {', '.join(sorted(types)) or 'none'})")
            try:
                cls.check(spec)  # type: ignore[attr-defined]
            except AdapterConfigError as e:
                raise AdapterConfigError(f"adapters.{index} ({name}): {e}") from None
            wanted[name] = spec
        steps: list[tuple[str, str, dict, type | None]] = []
        for name, running in self.adapters.items():
            if name not in wanted or wanted[name].get("type") != running.type_name:
                steps.append(("stop", name, running.spec, None))
        for name, spec in wanted.items():
            running_now = self.adapters.get(name)
            cls = types[str(spec["type"])]
            if running_now is None or running_now.type_name != spec.get("type"):
                steps.append(("start", name, spec, cls))
            elif running_now.spec != spec:
                steps.append(("reconfigure", name, spec, cls))
        return steps

    def apply(self, specs: list[dict]) -> list[tuple[str, str]]:
        """Make the running adapters match `specs`; AdapterConfigError (nothing changed) when one cannot run."""
        with self._lock:
            steps = self.plan(specs)
            done = []
            for action, name, spec, cls in steps:
                try:
                    if action == "stop":
                        self.adapters.pop(name).stop()
                    elif action == "start":
                        adapter = cls(name, spec, self.sink)  # type: ignore[misc]
                        adapter.start()
                        self.adapters[name] = adapter
                    else:
                        self.adapters[name].reconfigure(spec)
                except Exception as e:  # noqa: BLE001 - checked before; a start failing now is that adapter's
                    log.exception("adapter %s: %s failed", name, action)
                    if name in self.adapters:
                        self.adapters[name].error(f"{action} failed: {type(e).__name__}: {e}")
                done.append((action, name))
            return done

    def stop(self) -> None:
        with self._lock:
            for adapter in list(self.adapters.values()):
                try:
                    adapter.stop()
                except Exception:  # noqa: BLE001
                    log.exception("adapter %s: stop failed", adapter.name)
            self.adapters.clear()

    def states(self) -> dict[str, dict]:
        return {name: adapter.state() for name, adapter in sorted(list(self.adapters.items()))}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
