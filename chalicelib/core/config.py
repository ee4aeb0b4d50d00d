"""Settings read from the environment, once per process.

On AWS the values come from .chalice/config.json (fed by the infra stack's
outputs, see docs/DEPLOY.md); locally and in tests from infra.stack.environment().
Names default to the stack naming of infra/template.yaml so that the app can
name its queues and stream at import time.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import cached_property, lru_cache


log = logging.getLogger(__name__)
DEVELOPMENT_PEPPER = "local-development-pepper"


def on_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _int_or_default(name: str, default: int) -> int:
    """A tuning knob: a value that is not a whole number falls back to the default instead of failing the import."""
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _days(name: str, default: float, unit: str = "days") -> float:
    """A lifetime in days (or another `unit`; fractions allowed). A value that is not a non-negative
    number fails the import: a typo must not silently keep (or delete) data for the wrong time."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: a duration in {unit} (a number, fractions allowed)") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name}={raw!r}: a duration in {unit} must be a finite number >= 0")
    return value


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
    api_key_pepper_env: str | None  # API_KEY_PEPPER: tests and the local stack; on AWS the secret below
    idempotency_ttl_seconds: int
    event_ttl_seconds: int
    connection_ttl_seconds: int
    max_body_bytes: int
    websocket_endpoint_override: str | None
    # The deployed WebSocket API's wss:// URL for the console (infra/package.py sets it from the app stack).
    console_websocket_url: str | None = None
    log_retention_days: float = 14.0
    session_retention_days: float = 7.0
    # Item lifetimes in days, fractions allowed (the contract's Retention section; docs/ARCHITECTURE.md).
    expired_session_retention_days: float = 30.0
    patch_event_retention_days: float = 90.0
    ingest_retention_days: float = 30.0
    report_retention_days: float = 365.0
    audit_retention_days: float = 400.0
    # Pages each retention sweep reads per run (resumable: the next run goes on from its cursor).
    retention_sweep_pages: int = 20
    # A workspace blob no manifest names is deleted once it is this old (a commit in flight names it soon).
    orphan_blob_grace_seconds: int = 3600
    cors_allow_origins: str = "*"
    jobs_idle_poll_seconds: int = 5
    api_key_pepper_secret: str | None = None
    # Ops scan (chalicelib/ops): the jobs DLQ it reads, where it files issues, the optional model.
    jobs_dlq_url: str = ""
    github_token: str | None = field(default=None, repr=False)  # never printed, logged or returned
    github_repo: str | None = None
    github_api_url: str = "https://api.github.com"
    llm_model: str | None = None
    # GitHub tools (chalicelib/github_tools, docs/GITHUB.md): the retry queue for rate-limited calls, a
    # per-organization limit of invocations a minute, and the GitHub App whose installation tokens are
    # minted per call (when unset, GITHUB_TOKEN is used).
    github_tools_queue_name: str = ""
    github_tools_queue_url: str = ""
    github_tools_per_minute: int = 120
    github_app_id: str | None = None
    github_app_private_key_secret: str | None = None   # a Secrets Manager secret's ARN (the PEM)
    github_app_private_key_env: str | None = field(default=None, repr=False)  # the PEM itself (local stack, tests)
    github_app_installation_id: str | None = None      # else asked of GitHub per repository
    ops_log_group_prefix: str = "/aws/lambda/control-plane-"
    # Fleet configuration: an agent whose reported version lags its desired one this long is drift (ops scan).
    config_drift_minutes: float = 30.0
    # Gateways (issue 21): certificate lifetime, WebSocket token lifetime, the mTLS truststore's S3 object.
    gateway_cert_days: float = 30.0
    gateway_ws_token_seconds: int = 300
    truststore_bucket: str | None = None
    truststore_key: str = "truststore.pem"
    # The mutual-TLS custom domain whose truststore the app points at each new bundle (the app stack's
    # MtlsDomainName parameter; unset: no domain, no API Gateway call).
    mtls_domain_name: str | None = None
    # People (issue 21): OpenID Connect tokens from a Cognito user pool (core/tokens.py). JWTs are
    # accepted only when issuer and audience (the app client's id) are both set.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    # Where the issuer's keys are, when not at {issuer}/.well-known/jwks.json (the local stack's pool).
    oidc_jwks_url: str | None = None
    # The Cognito API endpoint the console signs in against (default https://cognito-idp.{region}.amazonaws.com/).
    oidc_endpoint: str | None = None
    # The pool POST /users invites into (chalicelib/users/adapters.py); its region is the app's.
    cognito_user_pool_id: str | None = None
    region: str = "us-east-1"

    def require_outbox_stream_arn(self) -> str:
        """The stream ARN app.py wires at import (Chalice writes it into the packaged template); never a placeholder."""
        if not self.outbox_stream_arn:
            raise RuntimeError(
                "OUTBOX_STREAM_ARN is not set: the app wires the outbox table's stream when it is imported, and only "
                "a deployed data stack knows its ARN. Deploy it first (make deploy STAGE=..., or "
                "`python -m infra.stack controlplane-STAGE` prints the variables to export).")
        return self.outbox_stream_arn

    @cached_property
    def api_key_pepper(self) -> str:
        """The keyed-hash secret for API keys, resolved on first use (so once per cold start).

        API_KEY_PEPPER if set (tests, the local stack); else the Secrets Manager
        secret the data stack made (API_KEY_PEPPER_SECRET_ARN); else, outside
        Lambda only, a development value. On Lambda a missing pepper is an
        error, never the development value: every key would be forgeable.
        """
        if self.api_key_pepper_env:
            return self.api_key_pepper_env
        if self.api_key_pepper_secret:
            from chalicelib.aws import secrets

            return secrets.secret_string(self.api_key_pepper_secret)
        if on_lambda():
            log.error("API key pepper missing: set API_KEY_PEPPER_SECRET_ARN (make deploy does) or API_KEY_PEPPER; "
                      "refusing to run with the development pepper")
            raise RuntimeError("API key pepper missing (API_KEY_PEPPER_SECRET_ARN / API_KEY_PEPPER unset)")
        return DEVELOPMENT_PEPPER

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
            # Its label is a timestamp only a deployed stack knows: no default (require_outbox_stream_arn).
            outbox_stream_arn=os.environ.get("OUTBOX_STREAM_ARN", ""),
            idempotency_table=os.environ.get("IDEMPOTENCY_TABLE", f"{stack}-idempotency"),
            jobs_queue_name=os.environ.get("JOBS_QUEUE_NAME", f"{stack}-jobs"),
            jobs_queue_url=os.environ.get("JOBS_QUEUE_URL", f"{queue_base}/{stack}-jobs"),
            patches_queue_name=os.environ.get("PATCHES_QUEUE_NAME", f"{stack}-patches.fifo"),
            patches_queue_url=os.environ.get("PATCHES_QUEUE_URL", f"{queue_base}/{stack}-patches.fifo"),
            workspace_bucket=os.environ.get("WORKSPACE_BUCKET", f"{stack}-workspaces-{account}"),
            api_key_pepper_env=os.environ.get("API_KEY_PEPPER") or None,
            idempotency_ttl_seconds=_int("IDEMPOTENCY_TTL_SECONDS", 24 * 3600),
            event_ttl_seconds=_int("EVENT_TTL_SECONDS", 24 * 3600),
            # API Gateway closes a WebSocket after 2 h at most.
            connection_ttl_seconds=_int("CONNECTION_TTL_SECONDS", 2 * 3600),
            max_body_bytes=_int("MAX_BODY_BYTES", 256 * 1024),
            # Local stack: where post_to_connection goes instead of the
            # execute-api URL recorded at $connect.
            websocket_endpoint_override=os.environ.get("WEBSOCKET_ENDPOINT_OVERRIDE") or None,
            console_websocket_url=os.environ.get("CONSOLE_WEBSOCKET_URL") or None,
            # Instance log entries expire (DynamoDB TTL) this long after they were received.
            log_retention_days=_days("LOG_RETENTION_DAYS", 14),
            # Sessions not terminal this long after creation are expired by a schedule
            # (a float: tests and the local stack use a few seconds).
            session_retention_days=_days("SESSION_RETENTION_DAYS", 7),
            # Terminal sessions are deleted (with their list and counter items) this long after they ended.
            expired_session_retention_days=_days("EXPIRED_SESSION_RETENTION_DAYS", 30),
            patch_event_retention_days=_days("PATCH_EVENT_RETENTION_DAYS", 90),
            ingest_retention_days=_days("INGEST_RETENTION_DAYS", 30),
            report_retention_days=_days("REPORT_RETENTION_DAYS", 365),
            audit_retention_days=_days("AUDIT_RETENTION_DAYS", 400),
            retention_sweep_pages=max(1, _int_or_default("RETENTION_SWEEP_PAGES", 20)),
            orphan_blob_grace_seconds=max(0, _int_or_default("ORPHAN_BLOB_GRACE_SECONDS", 3600)),
            # Browser origins allowed to call the API: one origin or "*" (chalicelib/core/cors.py).
            cors_allow_origins=os.environ.get("CORS_ALLOW_ORIGINS", "*"),
            # nextPollSeconds when a poll found nothing.
            jobs_idle_poll_seconds=max(1, _int_or_default("JOBS_IDLE_POLL_SECONDS", 5)),
            # Where the API key pepper lives on AWS (a Secrets Manager secret the data stack creates).
            api_key_pepper_secret=os.environ.get("API_KEY_PEPPER_SECRET_ARN") or None,
            jobs_dlq_url=os.environ.get("JOBS_DLQ_URL", f"{queue_base}/{stack}-jobs-dlq"),
            github_token=os.environ.get("GITHUB_TOKEN") or None,
            github_repo=os.environ.get("GITHUB_REPO") or None,
            github_api_url=os.environ.get("GITHUB_API_URL") or "https://api.github.com",
            llm_model=os.environ.get("LLM_MODEL") or None,
            github_tools_queue_name=os.environ.get("GITHUB_TOOLS_QUEUE_NAME", f"{stack}-github-tools"),
            github_tools_queue_url=os.environ.get("GITHUB_TOOLS_QUEUE_URL", f"{queue_base}/{stack}-github-tools"),
            github_tools_per_minute=max(1, _int_or_default("GITHUB_TOOLS_PER_MINUTE", 120)),
            github_app_id=os.environ.get("GITHUB_APP_ID") or None,
            github_app_private_key_secret=os.environ.get("GITHUB_APP_PRIVATE_KEY_SECRET_ARN") or None,
            github_app_private_key_env=os.environ.get("GITHUB_APP_PRIVATE_KEY") or None,
            github_app_installation_id=os.environ.get("GITHUB_APP_INSTALLATION_ID") or None,
            # The CloudWatch log groups of the project's own functions (Chalice: /aws/lambda/{app}-{stage}-{fn}).
            ops_log_group_prefix=os.environ.get("OPS_LOG_GROUP_PREFIX", "/aws/lambda/control-plane-"),
            # Minutes (fractions allowed: tests use seconds' worth); a bad value fails the import like a lifetime.
            config_drift_minutes=_days("CONFIG_DRIFT_MINUTES", 30, unit="minutes"),
            # Gateways (issue 21, docs/SECURITY.md "Gateway certificates").
            gateway_cert_days=_days("GATEWAY_CERT_DAYS", 30),
            gateway_ws_token_seconds=max(30, _int_or_default("GATEWAY_WS_TOKEN_SECONDS", 300)),
            truststore_bucket=os.environ.get("TRUSTSTORE_BUCKET") or None,
            truststore_key=os.environ.get("TRUSTSTORE_KEY") or "truststore.pem",
            mtls_domain_name=os.environ.get("MTLS_DOMAIN_NAME") or None,
            oidc_issuer=os.environ.get("OIDC_ISSUER") or None,
            oidc_audience=os.environ.get("OIDC_AUDIENCE") or None,
            oidc_jwks_url=os.environ.get("OIDC_JWKS_URL") or None,
            oidc_endpoint=os.environ.get("OIDC_ENDPOINT") or None,
            cognito_user_pool_id=os.environ.get("COGNITO_USER_POOL_ID") or None,
            region=region,
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
