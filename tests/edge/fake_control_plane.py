"""A tiny real HTTP control plane for gateway tests: POST /ingest stores by recordId, scriptable failures."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class FakeControlPlane:
    """`script(records) -> (status, headers, body) | None`: None means the normal answer."""

    def __init__(self) -> None:
        self.records: dict[str, dict] = {}
        self.calls: list[tuple[float, int, int]] = []  # (time, status, records in the batch)
        self.script: Callable[[list[dict]], tuple[int, dict, dict] | None] | None = None
        self.acks: list[tuple[str, dict]] = []  # (commandId, body) of every POST /commands/{id}/ack
        self.pending_commands: list[dict] = []   # what GET /agents/{id}/commands?status=pending lists
        self.config: dict | None = None          # GET /agents/{id}/config answers {version, desired, reported}
        self.reports: list[dict] = []             # POST /agents/{id}/config/reported bodies
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/commands/") and self.path.endswith("/ack"):
                    command_id = self.path.split("/")[2]
                    fake.acks.append((command_id, json.loads(raw)))
                    fake.pending_commands = [c for c in fake.pending_commands if c["commandId"] != command_id]
                    return self._send(200, {}, {"commandId": command_id, **json.loads(raw)})
                if self.path.startswith("/agents/") and self.path.endswith("/config/reported"):
                    body = json.loads(raw)
                    fake.reports.append(body)
                    if fake.config is not None:
                        fake.config["reported"] = {**body, "at": "2026-01-01T00:00:00Z"}
                    return self._send(204, {}, {})
                if self.path != "/ingest":
                    return self._send(404, {}, {"error": {"code": "NOT_FOUND"}})
                records = json.loads(raw)["records"]
                answer = fake.script(records) if fake.script else None
                if answer is None:
                    with fake.lock:
                        new = [r for r in records if r["recordId"] not in fake.records]
                        for r in new:
                            fake.records[r["recordId"]] = r
                    answer = (200, {}, {"accepted": len(new), "duplicates": len(records) - len(new),
                                        "agentId": "agent-1"})
                status, headers, body = answer
                fake.calls.append((time.monotonic(), status, len(records)))
                self._send(status, headers, body)

            def do_GET(self):  # noqa: N802
                if self.path.startswith("/agents/") and self.path.endswith("/config"):
                    if fake.config is None:
                        return self._send(404, {}, {"error": {"code": "NOT_FOUND"}})
                    return self._send(200, {}, {"reported": None, "delta": {}, **fake.config})
                self._send(200, {}, {"items": list(fake.pending_commands), "nextToken": None})

            def _send(self, status, headers, body):
                payload = json.dumps(body).encode() if status != 204 else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
