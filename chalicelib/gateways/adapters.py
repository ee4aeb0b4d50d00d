"""The gateways domain's AWS boundaries other than its items: the CA keys and the mTLS truststore.

- Each organization's CA private key is a Secrets Manager secret `{stack}/gateway-ca/{orgId}`, never
  a table item. It is read when a certificate is issued (enroll, renew), never on an
  authenticated call (core/certauth.py needs the public CA certificate only).
- With TRUSTSTORE_BUCKET set (the template's mutual-TLS custom domain), the bundle of every
  organization's CA certificate is written to `s3://{bucket}/{TRUSTSTORE_KEY}` (a versioned bucket)
  whenever a CA is made, with If-Match on the version it extends (a bundle only grows).
- With MTLS_DOMAIN_NAME set too, the domain (API Gateway) is pointed at the new version
  (`service.sync_truststore`; docs/DEPLOY.md "Turning mutual TLS on").
"""
from __future__ import annotations

from chalicelib.aws import blobs, domains, secrets
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


def truststore_configured() -> bool:
    return bool(settings().truststore_bucket)


def truststore_latest() -> blobs.Version | None:
    """The truststore object's current version (content, ETag, version id); None when none is written yet
    or no bucket is configured."""
    bucket = settings().truststore_bucket
    return blobs.get_latest(bucket, settings().truststore_key) if bucket else None


def write_truststore(bundle_pem: str, replacing: blobs.Version | None) -> blobs.Version | None:
    """Write a new version of the bundle only if `replacing` is still the latest (If-Match its ETag; no object:
    If-None-Match); None when another writer came first (read the latest again)."""
    bucket = settings().truststore_bucket
    assert bucket, "no TRUSTSTORE_BUCKET"
    try:
        return blobs.put_version(bucket, settings().truststore_key, bundle_pem.encode(),
                                 if_match=replacing.etag if replacing else None, if_none_match=replacing is None,
                                 content_type="application/x-pem-file")
    except blobs.PreconditionFailed:
        return None


def mtls_domain() -> str | None:
    """The mutual-TLS custom domain (MTLS_DOMAIN_NAME), when one is configured."""
    return settings().mtls_domain_name


def domain_truststore(domain_name: str) -> domains.Truststore:
    return domains.truststore_of(domain_name)


def point_domain(domain_name: str, version_id: str) -> domains.Truststore:
    """UpdateDomainName to that truststore version (retried while API Gateway is busy; domains.DomainBusy after)."""
    return domains.set_truststore_version(domain_name, version_id)
