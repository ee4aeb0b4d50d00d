"""API Gateway custom domains (the control-plane API, not the WebSocket management API): which
truststore version a mutual-TLS domain trusts, and pointing it at another.

API Gateway applies a truststore update asynchronously (the domain goes UPDATING, then AVAILABLE)
and refuses another update meanwhile (ConflictException), or throttles (TooManyRequestsException):
`set_truststore_version` retries those with backoff, at most `RETRY_DELAYS` (about 7.5 s in all,
inside a Lambda's 30 s), then raises DomainBusy; the caller's sweep tries again later.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import clients

log = logging.getLogger(__name__)

TRUSTSTORE_VERSION_PATH = "/mutualTlsAuthentication/truststoreVersion"
# Waits between attempts of an update API Gateway refused as busy (tests set zeros: no sleeps).
RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
_BUSY = ("ConflictException", "TooManyRequestsException")


class DomainBusy(Exception):
    """API Gateway still refused the update (an update in progress, or throttling) after every retry."""


@dataclass(frozen=True)
class Truststore:
    """What a mutual-TLS domain trusts: the truststore's S3 version (None: none named) and the domain's status."""
    version: str | None
    status: str | None
    warnings: tuple[str, ...]


def _apigateway() -> Any:
    return clients.client("apigateway")


def _truststore(domain: dict[str, Any]) -> Truststore:
    mtls = domain.get("mutualTlsAuthentication") or {}
    return Truststore(mtls.get("truststoreVersion") or None, domain.get("domainNameStatus"),
                      tuple(mtls.get("truststoreWarnings") or ()))


def truststore_of(domain_name: str) -> Truststore:
    """GetDomainName: the truststore version the domain names now."""
    return _truststore(_apigateway().get_domain_name(domainName=domain_name))


def set_truststore_version(domain_name: str, version_id: str) -> Truststore:
    """Point the domain's mutual TLS at `version_id` of its truststore object; answers what API Gateway
    reports (its truststore warnings: certificates it could not use). Raises DomainBusy after the retries."""
    operations = [{"op": "replace", "path": TRUSTSTORE_VERSION_PATH, "value": version_id}]
    for attempt, delay in enumerate((*RETRY_DELAYS, None)):
        try:
            return _truststore(_apigateway().update_domain_name(domainName=domain_name,
                                                                patchOperations=operations))
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code not in _BUSY:
                raise
            if delay is None:
                raise DomainBusy(f"{domain_name}: {code} after {attempt + 1} attempts") from None
            log.info("domain %s busy (%s): truststore update retried in %.1f s", domain_name, code, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
