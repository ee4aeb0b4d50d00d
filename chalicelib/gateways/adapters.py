"""The gateways domain's AWS boundaries other than its items: the CA keys and the mTLS truststore.

- Each organization's CA private key is a Secrets Manager secret `{stack}/gateway-ca/{orgId}`, never
  a table item. It is read when a certificate is issued (enroll, renew), never on an
  authenticated call (core/certauth.py needs the public CA certificate only).
- With TRUSTSTORE_BUCKET set (the template's mutual-TLS custom domain), the bundle of every
  organization's CA certificate is written to `s3://{bucket}/{TRUSTSTORE_KEY}` whenever a CA is
  made: API Gateway's truststore (docs/DEPLOY.md says how the domain picks up the new version).
"""
from __future__ import annotations

from chalicelib.aws import blobs, secrets
from chalicelib.core.config import settings


def _secret_name(org_id: str) -> str:
    return f"{settings().stack_name}/gateway-ca/{org_id}"


def ca_key(org_id: str) -> str | None:
    """The organization's CA private key (PEM), or None if it has none yet."""
    return secrets.secret_string_or_none(_secret_name(org_id))


def create_ca_key(org_id: str, key_pem: str) -> bool:
    """Store a new CA key; False when the organization has one already (a concurrent first enrollment)."""
    return secrets.create_secret(_secret_name(org_id), key_pem,
                                 description=f"gateway CA private key of organization {org_id} (issue 21)")


def publish_truststore(bundle_pem: str) -> bool:
    """Write the CA bundle where the mTLS custom domain reads its truststore; False when none is configured."""
    bucket = settings().truststore_bucket
    if not bucket:
        return False
    blobs.put(bucket, settings().truststore_key, bundle_pem.encode())
    return True
