"""Secrets Manager: read a secret's string value (the API key pepper, once per cold start)."""
from __future__ import annotations

from chalicelib.aws import clients


def secret_string(secret_id: str) -> str:
    """The current value of a secret (ARN or name); botocore errors propagate to the caller."""
    secret: str = clients.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    return secret
