"""`prometheus`: scrape a local metrics endpoint every `intervalSeconds` into records.

Spec: {name, type: "prometheus", table, url, intervalSeconds}.

Each scrape is parsed with prometheus_client's text parser; every sample becomes one record
{metric, name, type, labels, value, scrapedAt}. A scrape that fails (refused, a non-200 answer, text
the parser refuses) is a counted error; the next interval scrapes again.
"""
from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from edge_gateway.adapters import AdapterConfigError, PeriodicAdapter, Sink

MAX_SCRAPE_BYTES = 16 * 1024 * 1024


class PrometheusAdapter(PeriodicAdapter):
    type_name = "prometheus"

    def __init__(self, name: str, spec: dict, sink: Sink):
        super().__init__(name, spec, sink)
        self.counters.update({"scrapes": 0, "samples": 0})

    @classmethod
    def check(cls, spec: dict) -> None:
        url = spec.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise AdapterConfigError(f"url: an http(s) URL is required, got {url!r}")

    def collect(self) -> list[Any]:
        self.count("scrapes")
        timeout = max(1.0, min(30.0, float(self.spec.get("intervalSeconds", 15))))
        request = urllib.request.Request(self.spec["url"], headers={"Accept": "text/plain"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked
                text = response.read(MAX_SCRAPE_BYTES).decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"scrape answered {e.code}") from None
        except (OSError, urllib.error.URLError) as e:
            raise RuntimeError(f"scrape failed: {e}") from None
        scraped = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        records = []
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                value = sample.value
                records.append({"metric": family.name, "name": sample.name, "type": family.type,
                                "labels": dict(sample.labels),
                                # JSON has no NaN or infinities; the control plane refuses them
                                "value": value if math.isfinite(value) else str(value),
                                "scrapedAt": scraped})
        self.count("samples", len(records))
        return records
