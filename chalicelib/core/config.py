"""Settings read from the environment, once per process.

On AWS the values come from .chalice/config.json (fed by the infra stack's
outputs, see docs/DEPLOY.md); locally and in tests from infra.stack.environment().
Names default to the stack naming of infra/template.yaml so that the app can
name its queues and stream at import time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _int_or_default(name: str, default: int) -> int:
    """A tuning knob: a value that is not a whole number falls back to the default instead of failing the import."""
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    stack_name: str
    main_table: str
    outbox_table: str
    outbox_stream_arn: str
    idempotency_table: str
    jobs_queue_name: str
    jobs_queue_url: str
    patches_queue_name: str
    patches_queue_url: str
    workspace_bucket: str
    api_key_pepper: str
    idempotency_ttl_seconds: int
    event_ttl_seconds: int
    connection_ttl_seconds: int
    max_body_bytes: int
    websocket_endpoint_override: str | None
    log_retention_days: int = 14
    cors_allow_origins: str = "*"
    jobs_idle_poll_seconds: int = 5
    api_key_pepper_secret: str | None = None

    @classmethod
    def from_env(cls) -> "Settings":
        stack = os.environ.get("STACK_NAME", "controlplane-dev")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        account = os.environ.get("AWS_ACCOUNT_ID", "123456789012")
        queue_base = f"https://sqs.{region}.amazonaws.com/{account}"
        return cls(
            stack_name=stack,
            main_table=os.environ.get("MAIN_TABLE", f"{stack}-main"),
            outbox_table=os.environ.get("OUTBOX_TABLE", f"{stack}-outbox"),
            # Chalice needs a literal ARN at import time; the placeholder only
            # keeps imports working where no stream exists (unit tests).
            outbox_stream_arn=os.environ.get(
                "OUTBOX_STREAM_ARN", f"arn:aws:dynamodb:{region}:{account}:table/{stack}-outbox/stream/unset"
            ),
            idempotency_table=os.environ.get("IDEMPOTENCY_TABLE", f"{stack}-idempotency"),
            jobs_queue_name=os.environ.get("JOBS_QUEUE_NAME", f"{stack}-jobs"),
            jobs_queue_url=os.environ.get("JOBS_QUEUE_URL", f"{queue_base}/{stack}-jobs"),
            patches_queue_name=os.environ.get("PATCHES_QUEUE_NAME", f"{stack}-patches.fifo"),
            patches_queue_url=os.environ.get("PATCHES_QUEUE_URL", f"{queue_base}/{stack}-patches.fifo"),
            workspace_bucket=os.environ.get("WORKSPACE_BUCKET", f"{stack}-workspaces-{account}"),
            # Keyed hash secret for API keys. On AWS set it from a secret store;
            # the default exists only so local stacks and tests start.
            api_key_pepper=os.environ.get("API_KEY_PEPPER", "local-development-pepper"),
            idempotency_ttl_seconds=_int("IDEMPOTENCY_TTL_SECONDS", 24 * 3600),
            event_ttl_seconds=_int("EVENT_TTL_SECONDS", 24 * 3600),
            # API Gateway closes a WebSocket after 2 h at most.
            connection_ttl_seconds=_int("CONNECTION_TTL_SECONDS", 2 * 3600),
            max_body_bytes=_int("MAX_BODY_BYTES", 256 * 1024),
            # Local stack: where post_to_connection goes instead of the
            # execute-api URL recorded at $connect.
            websocket_endpoint_override=os.environ.get("WEBSOCKET_ENDPOINT_OVERRIDE") or None,
            # Instance log entries expire (DynamoDB TTL) this long after they were received.
            log_retention_days=_int("LOG_RETENTION_DAYS", 14),
            # Browser origins allowed to call the API: one origin or "*" (chalicelib/core/cors.py).
            cors_allow_origins=os.environ.get("CORS_ALLOW_ORIGINS", "*"),
            # nextPollSeconds when a poll found nothing.
            jobs_idle_poll_seconds=max(1, _int_or_default("JOBS_IDLE_POLL_SECONDS", 5)),
            # Where the API key pepper lives on AWS (a Secrets Manager secret the data stack creates).
            api_key_pepper_secret=os.environ.get("API_KEY_PEPPER_SECRET_ARN") or None,
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
