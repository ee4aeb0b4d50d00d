"""Pure rules of gateway certificates: what a CSR may ask, what a certificate says, the CA.

No AWS here: the service hands in the CA's key and certificate and stores what comes out.

A CSR contributes its public key only. The subject and SAN of the certificate are
set here: CN = the gateway id, O = the organization id, OU = "gateway", SAN URI
urn:controlplane:org:{org}:gateway:{gateway}; clientAuth only, not a CA.
A CSR's own subject and SAN are ignored when they are empty or name this gateway
(its id, its name or its URN); a CSR that asks for any other name is refused (400):
it is asking for someone else's identity (another gateway's name among them) and
nothing good comes of signing it.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# As chalicelib/core/certauth.py reads them (rules stay pure: certauth reaches DynamoDB;
# tests/unit/test_gateways_rules.py checks the two agree).
SAN_URI = "urn:controlplane:org:{org_id}:gateway:{gateway_id}"


def serial_text(serial_number: int) -> str:
    return format(serial_number, "x")


def fingerprint(der: bytes) -> str:
    import hashlib

    return hashlib.sha256(der).hexdigest()


MAX_CSR_CHARS = 16 * 1024
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
# Backdated so that a gateway whose clock is a little behind can use it at once.
BACKDATE = timedelta(minutes=5)
CA_YEARS = 10
KEEP_CERTIFICATES = 10  # listed on the gateway (the certificate items themselves stay)


class BadCsr(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Identity:
    org_id: str
    gateway_id: str
    name: str

    @property
    def uri(self) -> str:
        return SAN_URI.format(org_id=self.org_id, gateway_id=self.gateway_id)


def parse_csr(pem: str) -> x509.CertificateSigningRequest:
    """A CSR we may sign (BadCsr says why not): bounded, PEM, self-signed by its key, P-256 or RSA >= 2048."""
    if len(pem) > MAX_CSR_CHARS:
        raise BadCsr(f"at most {MAX_CSR_CHARS} characters")
    if "-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        raise BadCsr("not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)")
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
        valid = csr.is_signature_valid
    except (ValueError, TypeError, UnicodeEncodeError):
        raise BadCsr("not a readable PEM certificate request") from None
    except Exception:  # noqa: BLE001 - an unsupported algorithm inside a hostile CSR is bad input too
        raise BadCsr("not a readable PEM certificate request") from None
    if not valid:
        raise BadCsr("its signature does not verify with its own key")
    try:
        key = csr.public_key()
    except Exception:  # noqa: BLE001 - an unknown key type
        raise BadCsr("its key is neither EC P-256 nor RSA") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise BadCsr(f"an EC key must be on P-256, not {key.curve.name}")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise BadCsr(f"an RSA key must have at least {MIN_RSA_BITS} bits, not {key.key_size}")
        if key.key_size > MAX_RSA_BITS:
            raise BadCsr(f"an RSA key must have at most {MAX_RSA_BITS} bits")
    else:
        raise BadCsr("its key is neither EC P-256 nor RSA")
    return csr


def requested_names(csr: x509.CertificateSigningRequest) -> list[str]:
    """Every name the CSR asks for: subject common names, SAN DNS names and URIs."""
    names = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names
    names += san.get_values_for_type(x509.DNSName)
    names += san.get_values_for_type(x509.UniformResourceIdentifier)
    return names


def check_names(csr: x509.CertificateSigningRequest, identity: Identity) -> None:
    own = {identity.gateway_id, identity.name, identity.uri}
    foreign = [name for name in requested_names(csr) if name not in own]
    if foreign:
        raise BadCsr(f"it asks for a name that is not this gateway's ({foreign[0][:80]!r}): leave the subject "
                     "empty or use the gateway's own id or name; the server sets them")


def _name(identity: Identity) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.org_id),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "gateway"),
                      x509.NameAttribute(NameOID.COMMON_NAME, identity.gateway_id)])


def ca_name(org_id: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_id),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"gateway CA {org_id}")])


def new_ca(org_id: str, now: datetime) -> tuple[str, str]:
    """A fresh CA for one organization: (private key PEM, certificate PEM). EC P-256, 10 years."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _pem_key(key), ca_certificate(org_id, _pem_key(key), now)


def ca_certificate(org_id: str, key_pem: str, now: datetime) -> str:
    key = load_key(key_pem)
    name = ca_name(org_id)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def load_key(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


@dataclass(frozen=True)
class Issued:
    pem: str
    serial: str
    not_before: str
    not_after: str
    fingerprint: str


def issue(csr: x509.CertificateSigningRequest, identity: Identity, ca_pem: str, ca_key_pem: str, now: datetime,
          days: float) -> Issued:
    """The gateway's certificate for the CSR's key, signed by the organization's CA."""
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = load_key(ca_key_pem)
    public = csr.public_key()
    key_usage = x509.KeyUsage(digital_signature=True, content_commitment=False,
                              key_encipherment=isinstance(public, rsa.RSAPublicKey), data_encipherment=False,
                              key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False,
                              decipher_only=False)
    serial = int.from_bytes(secrets.token_bytes(16), "big") >> 1 or 1  # 127 random bits, positive
    not_before, not_after = now - BACKDATE, now + timedelta(days=days)
    cert = (x509.CertificateBuilder().subject_name(_name(identity)).issuer_name(ca.subject)
            .public_key(public).serial_number(serial)
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return Issued(pem=cert.public_bytes(serialization.Encoding.PEM).decode(), serial=serial_text(serial),
                  not_before=_iso(not_before), not_after=_iso(not_after),
                  fingerprint=fingerprint(cert.public_bytes(serialization.Encoding.DER)))


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def certificate_status(entry: dict[str, Any], now_iso: str) -> str:
    if entry.get("revokedAt"):
        return "revoked"
    return "expired" if entry["notAfter"] <= now_iso else "active"


def kept(certs: dict[str, dict[str, Any]], limit: int = KEEP_CERTIFICATES) -> dict[str, dict[str, Any]]:
    """The newest `limit` certificate summaries of a gateway (by notBefore)."""
    newest = sorted(certs.items(), key=lambda pair: pair[1]["notBefore"], reverse=True)[:limit]
    return dict(newest)


def enrollment_token() -> str:
    return f"gwe.{secrets.token_urlsafe(32)}"



def serial_from_path(text: str) -> str | None:
    """A serial as a path names it: our lower-case hex, or API Gateway's `0a:1b:...` form; None if neither."""
    digits = text.replace(":", "").strip()
    if not digits or len(digits) > 64:
        return None
    try:
        return serial_text(int(digits, 16))
    except ValueError:
        return None


# --- the mutual-TLS truststore bundle --------------------------------------------------------------

_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----")


def _certificates(text: str) -> dict[str, str]:
    """The PEM certificates in `text` by their base64 body (whitespace ignored), each as a clean PEM block."""
    found: dict[str, str] = {}
    for match in _PEM_CERTIFICATE.finditer(text):
        body = "".join(match.group(1).split())
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        found.setdefault(body, "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n")
    return found


def truststore_bundle(current: str, wanted: Iterable[str]) -> tuple[str, int]:
    """The bundle to publish: every certificate of `current` (a CA is never dropped: a bundle only grows, so
    a later version always holds what an earlier one did) followed by those of `wanted` it lacks; and how
    many it lacked (0: `current` already holds every wanted CA)."""
    have = _certificates(current)
    missing = {body: pem for body, pem in _certificates("".join(wanted)).items() if body not in have}
    return "".join([*have.values(), *missing.values()]), len(missing)
