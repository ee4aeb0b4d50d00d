"""The gateway's settings, from `.env` in the working directory and the environment, which wins
(see docs/GATEWAY.md, ".env and local endpoints")."""
from __future__ import annotations

import os
from dataclasses import dataclass

from dotenv import dotenv_values


def read_env(env: dict[str, str] | None = None, dotenv_path: str = ".env") -> dict[str, str]:
    """`.env` (KEY=value lines; comments, quotes and `export` as python-dotenv reads them), then the
    environment over it. A missing .env is no error."""
    merged = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None} if os.path.isfile(dotenv_path) \
        else {}
    merged.update(os.environ if env is None else env)
    return merged


@dataclass(frozen=True)
class Config:
    control_plane_url: str
    api_key: str
    db_path: str = "gateway.db"
    host: str = "127.0.0.1"
    port: int = 3000
    max_db_mb: float = 512.0
    drop_oldest: bool = False
    synchronous: str = "FULL"
    ws_url: str | None = None               # default: CONTROL_PLANE_URL's /ws (the local stack)
    agent_id: str | None = None             # default: learned from the control plane's answer to POST /ingest
    batch_records: int = 500
    batch_bytes: int = 192 * 1024
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    linger_seconds: float = 0.5             # a partial batch waits this long for company
    unhealthy_after_seconds: float = 300.0  # /health is 503 once the uplink has failed this long
    command_poll_seconds: float = 5.0
    ws_renew_seconds: float = 6600.0        # API Gateway closes a WebSocket after 2 h
    ws_ping_seconds: float = 300.0          # ... and one idle for 10 min
    config_file: str | None = None          # the last good configuration document; default: beside the buffer
    config_poll_seconds: float = 300.0      # the slow poll of GET /agents/{agentId}/config
    request_timeout: float = 10.0
    log_level: str = "INFO"
    # Gateway certificates (issue 21, edge_gateway/tls.py): enrolled identity instead of an API key.
    cert_dir: str | None = None             # GATEWAY_CERT_DIR: identity.pem, chain.pem, gateway.json
    server_ca: str | None = None            # GATEWAY_SERVER_CA: CA file for the control plane's server certificate
    tls_url: str | None = None              # CONTROL_PLANE_TLS_URL: the mutual-TLS URL (default: from enrollment)
    renew_check_seconds: float = 60.0       # how often renewal (from 60% of the lifetime, before 2/3) is considered

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, dotenv_path: str = ".env") -> "Config":
        e = read_env(env, dotenv_path)
        # With an enrolled certificate (GATEWAY_CERT_DIR holding identity.pem) no API key is needed.
        certified = bool(e.get("GATEWAY_CERT_DIR")) and os.path.exists(os.path.join(e["GATEWAY_CERT_DIR"], "identity.pem"))
        missing = [name for name in ("CONTROL_PLANE_URL", "GATEWAY_API_KEY") if not e.get(name)
                   and not (certified and name == "GATEWAY_API_KEY")]
        if missing:
            raise SystemExit(f"edge gateway: set {' and '.join(missing)} (see docs/GATEWAY.md)")
        on_full = e.get("GATEWAY_ON_FULL", "refuse")
        if on_full not in ("refuse", "drop-oldest"):
            raise SystemExit("edge gateway: GATEWAY_ON_FULL must be refuse or drop-oldest")
        return cls(
            control_plane_url=e["CONTROL_PLANE_URL"],
            api_key=e.get("GATEWAY_API_KEY", ""),
            db_path=e.get("GATEWAY_DB", "gateway.db"),
            host=e.get("GATEWAY_HOST", "127.0.0.1"),
            port=int(e.get("GATEWAY_PORT", 3000)),
            max_db_mb=float(e.get("GATEWAY_MAX_DB_MB", 512)),
            drop_oldest=on_full == "drop-oldest",
            synchronous=e.get("GATEWAY_SYNCHRONOUS", "FULL").upper(),
            ws_url=e.get("GATEWAY_WS_URL") or None,
            agent_id=e.get("GATEWAY_AGENT_ID") or None,
            batch_records=int(e.get("GATEWAY_BATCH_RECORDS", 500)),
            batch_bytes=int(e.get("GATEWAY_BATCH_KB", 192)) * 1024,
            backoff_base=float(e.get("GATEWAY_BACKOFF_BASE_SECONDS", 0.5)),
            backoff_cap=float(e.get("GATEWAY_BACKOFF_CAP_SECONDS", 60)),
            linger_seconds=float(e.get("GATEWAY_LINGER_SECONDS", 0.5)),
            unhealthy_after_seconds=float(e.get("GATEWAY_UNHEALTHY_AFTER_SECONDS", 300)),
            command_poll_seconds=float(e.get("GATEWAY_COMMAND_POLL_SECONDS", 5)),
            ws_renew_seconds=float(e.get("GATEWAY_WS_RENEW_SECONDS", 6600)),
            ws_ping_seconds=float(e.get("GATEWAY_WS_PING_SECONDS", 300)),
            config_file=e.get("GATEWAY_CONFIG_FILE") or None,
            config_poll_seconds=float(e.get("GATEWAY_CONFIG_POLL_SECONDS", 300)),
            request_timeout=float(e.get("GATEWAY_REQUEST_TIMEOUT_SECONDS", 10)),
            log_level=e.get("GATEWAY_LOG_LEVEL", "INFO").upper(),
            cert_dir=e.get("GATEWAY_CERT_DIR") if certified else None,
            server_ca=e.get("GATEWAY_SERVER_CA") or None,
            tls_url=e.get("CONTROL_PLANE_TLS_URL") or None,
            renew_check_seconds=float(e.get("GATEWAY_RENEW_CHECK_SECONDS", 60)),
        )
