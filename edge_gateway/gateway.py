"""The gateway: buffer, uplink, control channel and local API, started and stopped in order."""
from __future__ import annotations

import logging
import threading
import time
from urllib.parse import quote

from edge_gateway.adapters import AdapterHost, Sink
from edge_gateway.api import Api
from edge_gateway.buffer import Buffer
from edge_gateway.client import ControlPlane, Unreachable
from edge_gateway.config import Config
from edge_gateway.control import ControlChannel
from edge_gateway.metrics import Metrics
from edge_gateway.remote_config import RemoteConfig
from edge_gateway.uplink import Uplink

log = logging.getLogger("edge_gateway")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Gateway:
    def __init__(self, config: Config):
        self.config = config
        self.metrics = Metrics()
        self.buffer = Buffer(config.db_path, int(config.max_db_mb * 1024 * 1024), drop_oldest=config.drop_oldest,
                             synchronous=config.synchronous)
        self.buffer.on_change = self.metrics.add
        # An enrolled certificate (issue 21, edge_gateway/tls.py): REST over mutual TLS, renewal before 2/3 of its life.
        self.identity, self.renewer = None, None
        if config.cert_dir:
            from edge_gateway.tls import Identity, Renewer

            self.identity = Identity(config.cert_dir, config.server_ca)
            self.renewer = Renewer(self.identity, config.renew_check_seconds)
        rest_url = (config.tls_url or self.identity.tls_url) if self.identity else config.control_plane_url
        self.cp = ControlPlane(rest_url, config.api_key, timeout=config.request_timeout, identity=self.identity)
        self.uplink = Uplink(self.buffer, self.cp, self.metrics, batch_records=config.batch_records,
                             batch_bytes=config.batch_bytes, backoff_base=config.backoff_base,
                             backoff_cap=config.backoff_cap, idle_interval=config.linger_seconds)
        self.uplink.state.agent_id = config.agent_id
        self.control = ControlChannel(self.buffer, self.cp, self.metrics, self._ws_url(),
                                      self._agent_id, poll_seconds=config.command_poll_seconds,
                                      renew_seconds=config.ws_renew_seconds, ping_seconds=config.ws_ping_seconds)
        self.adapters = AdapterHost(Sink(self.buffer))
        self.metrics.adapter_states = self.adapters.states
        self.remote_config = RemoteConfig(self, config.config_file or f"{config.db_path}.config.json",
                                          config.config_poll_seconds)
        self.control.on_connect.append(self.remote_config.request_fetch)
        self.control.on_event["config:changed"] = self.remote_config.request_fetch
        self.control.register("ping", self._ping)
        self.control.register("flush", lambda payload: self.uplink.flush())
        self.control.register("set-log-level", self._set_log_level)
        self.api = Api(self, config.host, config.port)
        self.started_at = time.time()
        self.invalid_stores = 0  # bad input refused with 4xx by this process (nothing stored)
        self._stopped = threading.Event()

    def _ws_url(self):  # noqa: ANN202 - a URL, or with a certificate a function making one per connection
        """GATEWAY_WS_URL (the WebSocket API on AWS) with the agent key as `token`; else the local stack's /ws."""
        if self.identity is not None:
            return self._certified_ws_url
        if not self.config.ws_url:
            return self.cp.ws_url()
        if "token=" in self.config.ws_url:
            return self.config.ws_url
        separator = "&" if "?" in self.config.ws_url else "?"
        return f"{self.config.ws_url}{separator}token={quote(self.config.api_key, safe='')}"

    def _certified_ws_url(self) -> str:
        """With a certificate: a short-lived token from POST /gateways/{id}/ws-token (mutual TLS), on the
        WebSocket API's URL (GATEWAY_WS_URL; locally CONTROL_PLANE_URL's /ws, which API Gateway serves without mTLS)."""
        assert self.identity is not None
        token = quote(self.identity.ws_token(self.config.request_timeout), safe="")
        base = self.config.ws_url or ControlPlane(self.config.control_plane_url, "").ws_url().split("?token=")[0]
        return f"{base}{'&' if '?' in base else '?'}token={token}"

    # --- command handlers ------------------------------------------------------------

    def _ping(self, payload: dict) -> dict:
        return {"pong": True, "backlog": self.buffer.backlog, "at": _iso(time.time())}

    def _set_log_level(self, payload: dict) -> dict:
        level = str(payload.get("level", "")).upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}")
        logging.getLogger("edge_gateway").setLevel(level)
        return {"level": level}

    def agent_id(self) -> str | None:
        return self._agent_id()

    def _agent_id(self) -> str | None:
        if self.uplink.state.agent_id is None:
            # An empty ingest is the cheapest way to ask whose key this is (one auth read on the control plane).
            try:
                reply = self.cp.request("POST", "/ingest", {"batchId": "whoami", "records": []})
                if reply.status == 200 and isinstance((reply.json() or {}).get("agentId"), str):
                    self.uplink.state.agent_id = reply.json()["agentId"]
            except Unreachable:
                pass
        return self.uplink.state.agent_id

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.remote_config.load_last_good()  # adapters run from the last good document, control plane or not
        self.api.start()
        if self.renewer is not None:
            self.renewer.start()
        self.uplink.start()
        self.control.start()
        self.remote_config.start()
        log.info("edge gateway listening on http://%s:%s, uplink to %s, buffer %s", self.api.host, self.api.port,
                 self.config.control_plane_url, self.config.db_path)

    def stop(self) -> None:
        """Graceful: stop accepting, finish in-flight stores and the in-flight upload, close the socket,
        checkpoint the WAL."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("stopping: no new requests")
        self.api.stop()
        log.info("stopping: adapters and configuration")
        self.remote_config.stop()
        self.adapters.stop()
        log.info("stopping: finishing the in-flight upload")
        self.uplink.stop()
        log.info("stopping: closing the control channel")
        self.control.stop()
        if self.renewer is not None:
            self.renewer.stop()
        self.cp.close()
        log.info("stopping: checkpointing the buffer")
        self.buffer.close()
        log.info("stopped")

    # --- reports -------------------------------------------------------------------------

    def refresh_gauges(self) -> None:
        self.metrics.backlog.set(self.buffer.backlog)
        self.metrics.used_bytes.set(self.buffer.used_bytes)
        self.metrics.cap_bytes.set(self.buffer.max_bytes)
        self.metrics.quarantine_size.set(self.buffer.counters.get("quarantined", 0))

    def stats(self) -> dict:
        return {**self.buffer.stats(), "invalidStores": self.invalid_stores}

    def uplink_status(self) -> dict:
        s = self.uplink.state
        now = time.time()
        return {"lastSuccess": _iso(s.last_success), "lastAttempt": _iso(s.last_attempt),
                "consecutiveFailures": s.consecutive_failures,
                "failingForSeconds": round(now - s.failing_since, 1) if s.failing_since else 0,
                "lastError": s.last_error, "nextAttemptAt": _iso(s.next_attempt_at),
                "backlog": self.buffer.backlog, "agentId": s.agent_id}

    def health(self) -> tuple[bool, dict]:
        uplink = self.uplink_status()
        failing = self.uplink.state.failing_since
        healthy = not (failing and time.time() - failing > self.config.unhealthy_after_seconds)
        stats = self.buffer.stats()
        body = {
            "status": "ok" if healthy else "degraded",
            "checks": {
                "buffer": {"backlog": stats["backlog"], "usedBytes": stats["usedBytes"], "capBytes": stats["capBytes"],
                           "full": stats["usedBytes"] >= stats["capBytes"], "dropped": stats["counters"]["dropped"],
                           "refused": stats["counters"]["refused"]},
                "uplink": {**uplink, "healthy": healthy,
                           "unhealthyAfterSeconds": self.config.unhealthy_after_seconds},
                "controlChannel": self.control.status(),
                "configuration": self.remote_config.status(),
                # each adapter's own state: one failing shows here (and in /metrics), the gateway stays up
                "adapters": self.adapters.states(),
            },
            "uptimeSeconds": round(time.time() - self.started_at, 1),
        }
        return healthy, body


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"
