"""The operator console in Debian's Chromium (Playwright) against the real local stack, each figure beside its goal.

    .venv/bin/python bench/console.py [--jobs 1000] [--events 200] [--log-lines 20000]

1. First useful paint of the jobs view with 1,000 jobs in the organization: from navigation start to
   the first page of rows in the DOM (the view's `console:jobs-ready` mark), and to all 1,000 rows shown.
2. Event received -> row updated, with 1,000 rows shown: job:progress events for running jobs; from the
   frame's arrival at the page's WebSocket to the next animation frame after the row's DOM changed; p50/p95.
3. Page weight: every file the page loads (bodies as served, uncompressed).
4. JS heap while 20,000 log lines stream into a job page's log tail: used heap after a GC once 1,000
   lines arrived, and again after all of them: the ratio.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import table  # noqa: E402
from devstack.testing import running_devstack  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
GOALS = {"paint": 1000.0, "p95": 250.0, "weight": 350 * 1024, "heap": 1.5}

ARRIVALS = """
window.__arrive = {};
window.__updated = {};
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (e) => {
      try {
        const m = JSON.parse(e.data);
        if (m.event === 'job:progress') window.__arrive[`${m.data.jobId}:${m.data.progressPercent}`] = performance.now();
      } catch {}
    });
  }
};
"""

OBSERVE_ROWS = """
() => {
  const tbody = document.querySelector('main tbody');
  new MutationObserver((records) => {
    const keys = new Set();
    for (const r of records) {
      const tr = r.target.closest && r.target.closest('tr');
      const bar = tr && tr.querySelector('progress');
      if (tr && bar) keys.add(`${tr.dataset.jobId}:${bar.value}`);
    }
    requestAnimationFrame(() => {
      const t = performance.now();
      for (const k of keys) if (!(k in window.__updated)) window.__updated[k] = t;
    });
  }).observe(tbody, { subtree: true, childList: true, characterData: true, attributes: true });
}
"""


def call(url: str, method: str, path: str, key: str, body=None) -> dict:
    request = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw else {}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--log-lines", type=int, default=20000)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"skipped: {CHROMIUM} is missing (apt-get install chromium)")
        return 0
    from playwright.sync_api import sync_playwright

    with running_devstack() as stack:
        url = stack.url
        org = call(url, "POST", "/orgs", stack.admin_api_key, {"name": "bench"})
        admin = org["adminKey"]
        operator = call(url, "POST", "/keys", admin, {"name": "bench", "scope": "operator"})["apiKey"]
        agent = call(url, "POST", "/agents", operator, {"name": "bench-agent", "pools": ["bench"]})
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: call(url, "POST", "/jobs", operator,
                                         {"pool": "bench", "type": f"bench-{i}", "payload": {"i": i}}), range(args.jobs)))
        print(f"queued {args.jobs} jobs in {time.perf_counter() - started:.1f} s", flush=True)
        running = []
        while len(running) < 50:
            running += call(url, "GET", f"/jobs/poll?agentId={agent['agentId']}&max=10", agent["apiKey"])["jobs"]
        instance = call(url, "POST", "/instances", operator, {"agentId": agent["agentId"], "name": "bench"})

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            saved = json.dumps(json.dumps({"method": "apiKey", "apiKey": admin}))
            context.add_init_script(f"sessionStorage.setItem('console.session', {saved});")
            context.add_init_script(ARRIVALS)
            page = context.new_page()
            weights: dict[str, int] = {}
            page.on("response", lambda r: weights.__setitem__(r.url, len(r.body())) if "/console" in r.url else None)

            # 1. first useful paint (a cold load of the page at the jobs view), then all 1,000 rows
            paints = []
            for _ in range(3):
                page.goto("about:blank")
                page.goto(f"{url}/console#/jobs")
                page.wait_for_function("() => performance.getEntriesByName('console:jobs-ready').length > 0")
                paints.append(page.evaluate("performance.getEntriesByName('console:jobs-ready')[0].startTime"))
            page.goto("about:blank")
            page.goto(f"{url}/console#/jobs?limit=1000")
            shown = min(args.jobs, 1000)
            page.wait_for_function(f"() => document.querySelectorAll('main tbody tr').length >= {shown}", timeout=60_000)
            all_rows = page.evaluate("performance.getEntriesByName('console:jobs-ready')[0].startTime")
            page.wait_for_selector("#conn[data-state=live]")

            # 2. event -> row updated, 1,000 rows shown
            page.evaluate(OBSERVE_ROWS)
            for n in range(args.events):
                job = running[n % len(running)]
                percent = round(n * 99 / args.events, 2) + 0.5   # unique per event: the key of its arrival and update
                call(url, "POST", "/jobs/progress", agent["apiKey"], {"jobId": job["jobId"], "runId": job["runId"],
                                                                      "agentId": agent["agentId"], "percent": percent})
            try:
                page.wait_for_function(f"() => Object.keys(window.__updated).length >= {int(args.events * 0.95)}", timeout=60_000)
            except Exception:
                print("arrived", len(page.evaluate("window.__arrive")), "updated", page.evaluate("window.__updated"),
                      list(page.evaluate("window.__arrive"))[:3])
                raise
            arrive, updated = page.evaluate("window.__arrive"), page.evaluate("window.__updated")
            delays = sorted(updated[k] - arrive[k] for k in arrive if k in updated)
            p50, p95 = statistics.median(delays), delays[int(0.95 * (len(delays) - 1))]

            # 3. page weight: what the page loaded
            weight = sum(size for u, size in weights.items() if "/console" in u and not u.endswith("config.json"))

            # 4. heap while the log tail takes 20,000 lines
            page.goto(f"{url}/console#/jobs/{running[0]['jobId']}?instance={instance['instanceId']}")
            page.wait_for_selector("ol.logs")
            cdp = context.new_cdp_session(page)

            def heap() -> int:
                cdp.send("HeapProfiler.collectGarbage")
                return cdp.send("Runtime.getHeapUsage")["usedSize"]

            def stream(first: int, count: int) -> None:
                for start in range(first, first + count, 500):
                    entries = [{"level": ("INFO", "WARN", "ERROR", "DEBUG")[i % 4], "message": f"line {i} " + "x" * 60}
                               for i in range(start, min(start + 500, first + count))]
                    call(url, "POST", f"/instances/{instance['instanceId']}/logs", agent["apiKey"], {"entries": entries})

            stream(0, 1000)
            page.wait_for_function("() => document.querySelector('ol.logs').textContent.includes('line 999 ')", timeout=60_000)
            heap_1k = heap()
            stream(1000, args.log_lines - 1000)
            last = args.log_lines - 1
            page.wait_for_function(f"() => document.querySelector('ol.logs').textContent.includes('line {last} ')",
                                   timeout=300_000)
            heap_all = heap()
            rows_in_dom = page.evaluate("document.querySelectorAll('ol.logs li').length")
            browser.close()

    paint = statistics.median(paints)
    rows = [
        ("first useful paint, jobs view (1,000 jobs; first 100 rows)", f"{paint:.0f} ms (median of 3)", "<= 1000 ms",
         "ok" if paint <= GOALS["paint"] else "MISSED"),
        ("all 1,000 rows shown", f"{all_rows:.0f} ms", "-", ""),
        ("event received -> row updated, 1,000 rows", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms ({len(delays)} events)",
         "p95 <= 250 ms", "ok" if p95 <= GOALS["p95"] else "MISSED"),
        ("page weight (every file loaded, uncompressed)", f"{weight / 1024:.1f} KB ({len(weights) - 1} files)", "<= 350 KB",
         "ok" if weight <= GOALS["weight"] else "MISSED"),
        (f"JS heap: after 1,000 lines -> after {args.log_lines:,}", f"{heap_1k / 1e6:.2f} MB -> {heap_all / 1e6:.2f} MB "
         f"(x{heap_all / heap_1k:.2f}; {rows_in_dom} rows in the DOM)", "<= x1.5",
         "ok" if heap_all <= GOALS["heap"] * heap_1k else "MISSED"),
    ]
    print()
    print(table(rows, ("measure", "measured", "goal", "")))
    return 0 if all(r[3] in ("ok", "") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
