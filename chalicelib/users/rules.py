"""Pure decisions about people (no AWS)."""
from __future__ import annotations

ACTIVE, DISABLED = "active", "disabled"


def normalized_email(email: str) -> str:
    """Emails are compared without case (Cognito's email usernames are case-insensitive)."""
    return email.strip().lower()


def status_of(disabled_at: str | None) -> str:
    return DISABLED if disabled_at else ACTIVE


def group_description(org_id: str, scope: str) -> str:
    return f"members of organization {org_id} with the {scope} scope (control plane)"
