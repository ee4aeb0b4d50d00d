"""Prometheus metrics, in a registry of the gateway's own (tests run several gateways in one process)."""
from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.counters = {
            "stored": Counter("gateway_records_stored", "Records durably buffered", registry=r),
            "uplinked": Counter("gateway_records_uplinked", "Records the control plane accepted as new", registry=r),
            "duplicates": Counter("gateway_records_duplicates",
                                  "Records the control plane already had (a retried upload)", registry=r),
            "dropped": Counter("gateway_records_dropped", "Oldest records deleted at the disk cap (drop-oldest)",
                               registry=r),
            "refused": Counter("gateway_stores_refused", "Stores refused with 507 at the disk cap", registry=r),
            "refusedRecords": Counter("gateway_records_refused", "Records in stores refused at the disk cap",
                                      registry=r),
            "quarantined": Counter("gateway_records_quarantined",
                                   "Records the control plane rejected for good (moved to quarantine)", registry=r),
            "retries": Counter("gateway_uplink_retries", "Uplink attempts that failed and will be retried",
                               registry=r),
        }
        self.invalid = Counter("gateway_stores_invalid", "Stores rejected for bad input (4xx, nothing stored)",
                               registry=r)
        self.backlog = Gauge("gateway_backlog_records", "Records waiting in the buffer", registry=r)
        self.used_bytes = Gauge("gateway_buffer_bytes", "Bytes the buffered records take against the cap", registry=r)
        self.cap_bytes = Gauge("gateway_buffer_cap_bytes", "The buffer's disk cap", registry=r)
        self.quarantine_size = Gauge("gateway_quarantine_records", "Records in quarantine", registry=r)
        self.uplink_latency = Histogram("gateway_uplink_latency_seconds", "POST /ingest round trip",
                                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r)
        self.consecutive_failures = Gauge("gateway_uplink_consecutive_failures", "Uplink failures in a row",
                                          registry=r)
        self.control_connected = Gauge("gateway_control_channel_connected", "1 while the WebSocket is open",
                                       registry=r)
        self.commands = Counter("gateway_commands", "Commands handled, by outcome", ["status"], registry=r)
        self.command_runs = Counter("gateway_command_runs", "Command handlers run (once per command)", registry=r)
        self.control_reconnects = Counter("gateway_control_channel_connections",
                                          "WebSocket connections opened (renewals and reconnects)", registry=r)
        self.config_applies = Counter("gateway_config_documents", "Configuration documents handled, by outcome",
                                      ["status"], registry=r)
        self.adapter_states: Callable[[], dict[str, dict]] = dict
        r.register(_AdapterCollector(self))

    def add(self, deltas: dict[str, int]) -> None:
        for name, delta in deltas.items():
            counter = self.counters.get(name)
            if counter is not None and delta > 0:
                counter.inc(delta)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _AdapterCollector(Collector):
    """Each adapter's own counters, read at scrape time: gateway_adapter_events_total{adapter,type,event}."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily("gateway_adapter_events", "Adapter counters (records, errors, per type)",
                                     labels=["adapter", "type", "event"])
        up = GaugeMetricFamily("gateway_adapter_running", "1 while the adapter runs without a current error",
                               labels=["adapter", "type"])
        for name, state in self.metrics.adapter_states().items():
            for event, value in state.get("counters", {}).items():
                events.add_metric([name, state.get("type", ""), event], value)
            up.add_metric([name, state.get("type", "")], 1 if state.get("status") == "running" else 0)
        yield events
        yield up
