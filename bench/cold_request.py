"""Cold start with its first request: `import app` plus one API Gateway event, in a fresh interpreter.

    .venv/bin/python bench/cold_request.py [--samples 7]

A Lambda cold start pays the import and then the first request, and a lazy
import only moves cost from the one to the other; this prints both, for
GET /health and POST /jobs, beside the bare Chalice + boto3 import of
bench/cold_import.py. The stack is moto's server in this process (the
child's CPU time does not include it); each sample is a fresh interpreter
that imports app.py and hands one event to it, as Lambda does (CPU time, so
load on a shared machine counts less).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, table

BARE_APP = """
import boto3
from chalice import Chalice
app = Chalice(app_name="bare")
"""
PROBE = """
import json, sys, time
event = json.loads(sys.argv[1])

class Context:
    aws_request_id = "bench"
    function_name = "api_handler"
    def get_remaining_time_in_millis(self):
        return 30000

t0 = time.process_time()
import {module} as module
t1 = time.process_time()
status = module.app(event, Context())["statusCode"] if event else 0
t2 = time.process_time()
print(json.dumps({{"import": t1 - t0, "request": t2 - t1, "status": status}}))
"""


def api_event(method: str, path: str, key: str | None = None, body: dict | None = None) -> dict:
    headers = {"content-type": "application/json", "host": "bench.local"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return {"resource": path, "path": path, "httpMethod": method, "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
            "requestContext": {"resourcePath": path, "httpMethod": method, "path": path, "stage": "api",
                               "requestId": "bench", "identity": {"sourceIp": "127.0.0.1"}},
            "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False}


def run(module: str, cwd: Path, env: dict, event: dict | None) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module), json.dumps(event or {})], cwd=cwd,
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per moto request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    from infra.stack import deploy, environment

    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
           "STACK_NAME": "cp-bench", "ADMIN_API_KEY": "cp_bench_admin_key_0123456789abcdef0123456789abcd",
           **environment(deploy("cp-bench"))}
    # Seed (not measured): the root org and its admin key, and an agent for the jobs.
    seed = subprocess.run([sys.executable, "-c", "import app, json; print(json.dumps(app.local_seed()))"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    admin_key = json.loads(seed.stdout.strip().splitlines()[-1])["adminApiKey"]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        agent = run("app", ROOT, env, api_event("POST", "/agents", admin_key, {"name": "bench", "pools": ["bench"]}))
        assert agent["status"] == 201, agent
        cases = {
            "bare Chalice + boto3 (import only)": ("bare_app", Path(tmp), None, None),
            "app.py import only": ("app", ROOT, None, None),
            "app.py + GET /health": ("app", ROOT, api_event("GET", "/health"), 200),
            "app.py + POST /jobs": ("app", ROOT, api_event("POST", "/jobs", admin_key,
                                                           {"pool": "bench", "type": "bench"}), 201),
        }
        samples: dict[str, list[dict]] = {name: [] for name in cases}
        for _ in range(args.samples):
            for name, (module, cwd, event, status) in cases.items():
                result = run(module, cwd, env, event)
                assert event is None or result["status"] == status, (name, result)
                samples[name].append(result)
    server.stop()
    bare = statistics.median(s["import"] for s in samples["bare Chalice + boto3 (import only)"])
    rows = []
    for name, results in samples.items():
        imported = statistics.median(r["import"] for r in results)
        request = statistics.median(r["request"] for r in results)
        total = statistics.median(r["import"] + r["request"] for r in results)
        rows.append((name, f"{imported * 1000:.0f} ms", f"{request * 1000:.0f} ms", f"{total * 1000:.0f} ms",
                     f"{total / bare:.2f}x"))
    print(f"Cold start (CPU time), median of {args.samples} fresh interpreters (alternating)\n")
    print(table(rows, ("case", "import", "first request", "import + request", "total / bare import")))


if __name__ == "__main__":
    main()
