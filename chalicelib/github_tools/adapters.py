"""The GitHub tools' AWS boundaries beside their store: the App's private key (Secrets Manager)
and the retry queue for calls GitHub rate-limited (SQS, delayed)."""
from __future__ import annotations

from typing import Any

from chalicelib.aws import queues, secrets
from chalicelib.core.config import settings


def app_private_key() -> str:
    """The GitHub App's private key (PEM): GITHUB_APP_PRIVATE_KEY locally, else the secret."""
    s = settings()
    if s.github_app_private_key_env:
        return s.github_app_private_key_env
    if not s.github_app_private_key_secret:
        raise RuntimeError("GITHUB_APP_ID is set but neither GITHUB_APP_PRIVATE_KEY_SECRET_ARN nor "
                           "GITHUB_APP_PRIVATE_KEY is")
    return secrets.secret_string(s.github_app_private_key_secret)


def send_retry(message: dict[str, Any], delay_seconds: int) -> None:
    """A rate-limited invocation, back on the queue after `delay_seconds` (SQS caps it at 900)."""
    queues.send(settings().github_tools_queue_url, message, delay_seconds=max(1, delay_seconds))
