"""Gateway certificates: who a mutual-TLS caller is (issue 21).

API Gateway's mutual TLS (a custom domain with a truststore) and the local
stack's TLS port hand the function the client's certificate as
`requestContext.identity.clientCert` = {clientCertPem, subjectDN, issuerDN,
serialNumber, validity {notBefore, notAfter}}. The transport has already
checked that it chains to a CA of the truststore and is in its validity; it
has not checked revocation, nor which organization's CA signed it. This
module does the rest, from the PEM only (the DN strings are informative):

  1. parse the PEM (bounded size);
  2. ONE strongly consistent GetItem on the certificate's item
     (PK GWCERT#{serial}): the organization, gateway and agent it was issued
     to, the SHA-256 fingerprint of the certificate we issued, revokedAt;
  3. the certificate must be the one issued (fingerprint), signed by that
     organization's CA (its public certificate is cached per warm function:
     one GetItem the first time an organization is seen, none after), in its
     validity (no skew: the certificate's own notBefore is backdated), and
     not revoked.

The caller then acts as the gateway's agent: a `GatewayPrincipal` (agent
scope). Cost on a warm function: one GetItem (consistent: a revocation
commits before the DELETE answers, so the very next call sees it), plus at
most one small transaction per certificate and minute that records last seen.

Item keys that core reads and the gateways domain writes live here (as
core/auth.py owns the key item): `cert_pk`, `gateway_pk`, `ca_pk`.

A WebSocket token minted by POST /gateways/{id}/ws-token is a short-lived
agent key whose text starts with `cpw.` (bound into its hash): the WebSocket
accepts it, REST refuses it here (`refuse_ws_token`).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.aws import dynamo
from chalicelib.core import audit, clock, observability
from chalicelib.core.auth import Principal, Scope, bearer_token
from chalicelib.core.config import settings
from chalicelib.core.errors import Unauthorized

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger(__name__)

# A client certificate's PEM is about 1 KB (P-256) or 2 KB (RSA 4096); anything far larger is not ours.
MAX_CERT_PEM_CHARS = 16 * 1024
# Last seen is written at most once per certificate and minute.
LAST_SEEN_EVERY_SECONDS = 60
# The text every WebSocket token starts with (gateways/service.py mints them).
WS_TOKEN_PREFIX = "cpw."
# The SAN URI of a gateway certificate: the server sets it, never the CSR.
SAN_URI = "urn:controlplane:org:{org_id}:gateway:{gateway_id}"


@dataclass(frozen=True)
class GatewayPrincipal(Principal):
    """A gateway presenting its certificate: agent scope, bound to the gateway's agent."""

    gateway_id: str = ""
    serial: str = ""

    @property
    def actor(self) -> str:
        return f"gateway:{self.gateway_id}"


def cert_pk(serial: str) -> dict[str, str]:
    return {"PK": f"GWCERT#{serial}", "SK": "CERT"}


def gateway_pk(gateway_id: str) -> dict[str, str]:
    return {"PK": f"GW#{gateway_id}", "SK": "GW"}


def ca_pk(org_id: str) -> dict[str, str]:
    return {"PK": f"ORG#{org_id}#GWCA", "SK": "CA"}


def serial_text(serial_number: int) -> str:
    """How a serial is written everywhere (paths, items): lower-case hex, no separators."""
    return format(serial_number, "x")


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


class CertDenied(Exception):
    def __init__(self, reason: str, org_id: str | None = None, actor: str = "anonymous"):
        super().__init__(reason)
        self.reason, self.org_id, self.actor = reason, org_id, actor


# --- the organization CAs, cached per warm function ------------------------------

_ca_lock = threading.Lock()
_ca_cache: dict[str, "x509.Certificate"] = {}


def org_ca(org_id: str) -> "x509.Certificate | None":
    """The organization's CA certificate: one GetItem the first time, cached after (a CA never changes
    once made; an organization without one is not cached, so its first enrollment is seen at once)."""
    cached = _ca_cache.get(org_id)
    if cached is not None:
        return cached
    item = dynamo.get(settings().main_table, ca_pk(org_id), consistent=True)
    if item is None:
        return None
    from cryptography import x509

    ca = x509.load_pem_x509_certificate(item["certPem"].encode())
    with _ca_lock:
        _ca_cache[org_id] = ca
    return ca


def forget_cas() -> None:
    """Tests: a fresh AWS account per module."""
    with _ca_lock:
        _ca_cache.clear()


# --- the request's client certificate ------------------------------------------------

def presented(context: dict[str, Any] | None) -> dict[str, Any] | None:
    """The `clientCert` API Gateway (or the local TLS port) put in the request context, if any."""
    identity = (context or {}).get("identity") or {}
    client_cert = identity.get("clientCert")
    return client_cert if isinstance(client_cert, dict) and client_cert.get("clientCertPem") else None


def parse(pem: Any) -> "x509.Certificate":
    from cryptography import x509

    if not isinstance(pem, str) or len(pem) > MAX_CERT_PEM_CHARS:
        raise CertDenied("unreadable client certificate")
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise CertDenied("unreadable client certificate") from None


def signed_by(cert: "x509.Certificate", ca: "x509.Certificate") -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - InvalidSignature and key-type mismatches alike
        return False
    return True


def authenticate_cert(client_cert: dict[str, Any]) -> tuple[GatewayPrincipal, dict[str, Any]]:
    """The gateway principal of a presented certificate and its item, or CertDenied (see module doc)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = parse(client_cert.get("clientCertPem"))
    serial = serial_text(cert.serial_number)
    item = dynamo.get(settings().main_table, cert_pk(serial), consistent=True)  # the one read per call
    if item is None:
        raise CertDenied("unknown client certificate (not issued by this control plane)")
    org_id, actor = item["orgId"], f"gateway:{item['gatewayId']}"
    if fingerprint(cert.public_bytes(Encoding.DER)) != item.get("fingerprint"):
        raise CertDenied("client certificate is not the one issued with its serial", org_id, actor)
    ca = org_ca(org_id)
    if ca is None or not signed_by(cert, ca):
        raise CertDenied("client certificate is not signed by the organization's CA", org_id, actor)
    now = clock.now()
    if cert.not_valid_before_utc.timestamp() > now:
        raise CertDenied("client certificate is not valid yet", org_id, actor)
    if cert.not_valid_after_utc.timestamp() <= now:
        raise CertDenied("expired client certificate", org_id, actor)
    if item.get("revokedAt"):
        raise CertDenied("revoked client certificate", org_id, actor)
    principal = GatewayPrincipal(org_id=org_id, key_id=f"cert:{serial}", scope=Scope.AGENT,
                                 agent_id=item["agentId"], gateway_id=item["gatewayId"], serial=serial)
    return principal, item


def authenticate_or_401(client_cert: dict[str, Any], method: str, path: str, trace_id: str | None,
                        source: str | None = None) -> GatewayPrincipal:
    """The gateway's principal, or Unauthorized after auditing the denial (as core/api.py does for keys)."""
    try:
        principal, item = authenticate_cert(client_cert)
    except CertDenied as denied:
        audit.record_denial(denied.org_id, denied.actor, denied.reason, method, path, trace_id, source=source)
        observability.count("Denials")
        raise Unauthorized(f"{denied.reason}: present a current certificate issued to this gateway") from None
    _touch_last_seen(principal, item)
    return principal


def _touch_last_seen(principal: GatewayPrincipal, item: dict[str, Any]) -> None:
    """Last seen on the certificate and its gateway, at most once a minute per certificate (a conditional
    write: of many concurrent calls one wins). Never fails the call."""
    now = clock.now()
    last = item.get("lastSeenAt")
    if last and clock.parse_iso(last) > now - LAST_SEEN_EVERY_SECONDS:
        return
    from chalicelib.core.context import Ctx  # here: the unit of work imports core.auth
    from chalicelib.core.tx import Tx, TxFailed

    at = clock.iso(now)
    table = settings().main_table
    tx = Tx(Ctx(principal=principal))
    tx.update("certificate", dynamo.Update(
        table, cert_pk(principal.serial), set={"lastSeenAt": at},
        condition="attribute_exists(PK) AND (attribute_not_exists(lastSeenAt) OR lastSeenAt < :cutoff)",
        values={":cutoff": clock.iso(now - LAST_SEEN_EVERY_SECONDS)}))
    tx.update("gateway", dynamo.Update(table, gateway_pk(principal.gateway_id),
                                       set={"lastSeenAt": at, "lastSeenSerial": principal.serial},
                                       condition="attribute_exists(PK)"))
    try:
        tx.commit()
    except TxFailed:
        pass  # another call of the same minute wrote it
    except Exception:  # noqa: BLE001 - bookkeeping only: the call itself stands
        log.exception("last seen of certificate %s not recorded", principal.serial)


def refuse_ws_token(headers: dict[str, Any], method: str, path: str, trace_id: str | None,
                    source: str | None = None) -> None:
    """REST refuses a WebSocket token (`cpw.`...): it opens /ws only. Audited like any 401."""
    token = bearer_token(headers)
    if token is not None and token.startswith(WS_TOKEN_PREFIX):
        audit.record_denial(None, "anonymous", "a WebSocket token on a REST route", method, path, trace_id,
                            source=source)
        observability.count("Denials")
        raise Unauthorized("a WebSocket token opens /ws only: send Authorization: Bearer <apiKey> or a client "
                           "certificate")
