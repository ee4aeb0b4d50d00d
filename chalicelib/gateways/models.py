"""Gateways (issue 21): an edge gateway's enrollment, its certificates and its WebSocket tokens."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from chalicelib.core.models import ApiModel, PageModel, ShowsNulls


class CreateGatewayRequest(ApiModel):
    agent_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class GatewayCreated(ShowsNulls):
    gateway_id: str
    agent_id: str
    name: str
    enrollment_token: Optional[str] = Field(default=None, description="shown once: absent from an idempotent replay")
    enrollment_expires_at: str
    created_at: str


class CsrRequest(ApiModel):
    # Bounded in the service (audited 400), not here: a refused CSR is a security event to record.
    csr: str = Field(description="PEM certificate signing request: an EC P-256 or RSA >= 2048 key; its subject "
                                 "and SAN are ignored (the server sets them) unless they name another gateway")


class CertificateIssued(ShowsNulls):
    certificate_pem: str
    chain_pem: str = Field(description="the organization's CA certificate (PEM)")
    serial: str
    not_before: str
    not_after: str


class CertificateInfo(ShowsNulls):
    shown_null = ("revokedAt", "lastSeenAt")

    serial: str
    not_before: str
    not_after: str
    status: Literal["active", "expired", "revoked"]
    revoked_at: Optional[str] = None
    last_seen_at: Optional[str] = None


class Gateway(ShowsNulls):
    """A gateway: enrolled once it holds a certificate; its certificates newest first (the latest ten)."""

    shown_null = ("lastSeenAt", "enrolledAt")

    gateway_id: str
    agent_id: str
    name: str
    status: Literal["pending", "enrolled"]
    created_at: str
    enrollment_expires_at: str
    enrolled_at: Optional[str] = None
    last_seen_at: Optional[str] = None
    certificates: list[CertificateInfo] = Field(default_factory=list)


class GatewayList(PageModel):
    items: list[Gateway]


class ListQuery(ApiModel):
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None


class WsToken(ShowsNulls):
    token: str = Field(description="opens /ws?token= until expiresAt; refused by every REST route")
    expires_at: str
