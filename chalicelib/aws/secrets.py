"""Secrets Manager: read a secret's string value (the API key pepper, once per cold start)."""
from __future__ import annotations

from chalicelib.aws import clients


def secret_string(secret_id: str) -> str:
    """The current value of a secret (ARN or name); botocore errors propagate to the caller."""
    secret: str = clients.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    return secret


def secret_string_or_none(secret_id: str) -> str | None:
    """The current value of a secret, or None when there is no such secret."""
    secrets_manager = clients.client("secretsmanager")
    try:
        value: str = secrets_manager.get_secret_value(SecretId=secret_id)["SecretString"]
    except secrets_manager.exceptions.ResourceNotFoundException:
        return None
    return value


def create_secret(name: str, value: str, description: str = "") -> bool:
    """Create the secret `name`; False (and nothing changed) when it exists already (another writer was first)."""
    secrets_manager = clients.client("secretsmanager")
    try:
        secrets_manager.create_secret(Name=name, SecretString=value, Description=description)
    except secrets_manager.exceptions.ResourceExistsException:
        return False
    return True
