"""The gateway's certificate (issue 21): enrollment, the mutual-TLS identity, renewal.

    python -m edge_gateway enroll --url https://cp.example --gateway-id <id> --token <enrollmentToken>
                                  [--dir gateway-identity] [--server-ca ca.pem] [--tls-url https://...]

- The private key is an EC P-256 key made on this host and written with mode 0600; only a CSR
  (its public half, no subject: the control plane sets subject and SAN) leaves the host.
- `identity.pem` holds the key and the certificate together (one file, replaced atomically with
  rename, so a crash never pairs a new key with an old certificate); `chain.pem` the
  organization's CA; `gateway.json` the gateway id and the URLs.
- From then on every REST call (uplink, command poll and ack, configuration) goes to the
  mutual-TLS URL with this certificate and no API key; the WebSocket, which API Gateway serves
  without mutual TLS, opens with a short-lived token from POST /gateways/{id}/ws-token.
- Renewal: before two thirds of the certificate's lifetime have passed (from 60% on), a new key and CSR go to
  POST /gateways/{id}/renew over mutual TLS with the current certificate; the answer replaces
  identity.pem and new connections use it.
"""
from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("edge_gateway.tls")

IDENTITY, CHAIN, META = "identity.pem", "chain.pem", "gateway.json"
# Renewal starts at 60% of the lifetime (day 18 of 30): before two thirds have passed, with two days of
# hourly-or-better retries left before then should the control plane be away.
RENEW_AT = 0.6


def new_key_and_csr() -> tuple[bytes, str]:
    """(private key PEM, CSR PEM): EC P-256, an empty subject (the control plane sets it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, csr.public_bytes(serialization.Encoding.PEM).decode()


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by its owner only (0600 from creation on)."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def _post_json(url: str, body: dict[str, Any], headers: dict[str, str], context: ssl.SSLContext | None,
               timeout: float = 30) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json",
                                              **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"{}")
        except ValueError:
            return error.code, {}


def _server_context(server_ca: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=server_ca) if server_ca else ssl.create_default_context()
    return context


@dataclass
class Enrolled:
    gateway_id: str
    serial: str
    not_after: str
    directory: Path


def enroll(url: str, gateway_id: str, token: str, directory: Path, server_ca: str | None = None,
           tls_url: str | None = None) -> Enrolled:
    """Make the key here, send the CSR with the enrollment token, keep the certificate."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_pem, csr = new_key_and_csr()
    context = _server_context(server_ca) if url.startswith("https") else None
    status, answer = _post_json(f"{url.rstrip('/')}/gateways/{gateway_id}/enroll", {"csr": csr},
                                {"Authorization": f"Bearer {token}"}, context)
    if status != 201:
        raise EnrollmentFailed(status, (answer.get("error") or {}).get("message", str(answer)[:300]))
    _write_private(directory / IDENTITY, answer["certificatePem"].encode() + key_pem)
    (directory / CHAIN).write_text(answer["chainPem"])
    (directory / META).write_text(json.dumps({"gatewayId": gateway_id, "url": url, "tlsUrl": tls_url or url,
                                              "serverCa": server_ca}, indent=2))
    return Enrolled(gateway_id, answer["serial"], answer["notAfter"], directory)


class EnrollmentFailed(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


class Identity:
    """The gateway's certificate as a client SSL context, rebuilt when renewal replaces it."""

    def __init__(self, directory: Path, server_ca: str | None = None):
        self.directory = Path(directory)
        meta = json.loads((self.directory / META).read_text())
        self.gateway_id: str = meta["gatewayId"]
        self.tls_url: str = meta["tlsUrl"]
        self.server_ca = server_ca or meta.get("serverCa")
        self.generation = 0
        self._lock = threading.Lock()
        self._context = self._build()

    @property
    def path(self) -> Path:
        return self.directory / IDENTITY

    def _build(self) -> ssl.SSLContext:
        context = _server_context(self.server_ca)
        context.load_cert_chain(self.path)
        return context

    def context(self) -> ssl.SSLContext:
        return self._context

    def validity(self) -> tuple[float, float, str]:
        """(notBefore, notAfter) as epoch seconds, and the serial, of the current certificate."""
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(self.path.read_bytes())
        return (cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp(),
                format(cert.serial_number, "x"))

    def renew_due(self, now: float | None = None) -> bool:
        not_before, not_after, _ = self.validity()
        return (now or time.time()) >= not_before + (not_after - not_before) * RENEW_AT

    def renew(self, timeout: float = 30) -> str:
        """A new key and certificate over mutual TLS with the current one; returns the new serial."""
        key_pem, csr = new_key_and_csr()
        status, answer = _post_json(f"{self.tls_url.rstrip('/')}/gateways/{self.gateway_id}/renew", {"csr": csr}, {},
                                    self.context(), timeout)
        if status != 201:
            raise EnrollmentFailed(status, (answer.get("error") or {}).get("message", str(answer)[:300]))
        with self._lock:
            _write_private(self.path, answer["certificatePem"].encode() + key_pem)
            (self.directory / CHAIN).write_text(answer["chainPem"])
            self._context = self._build()
            self.generation += 1
        log.info("certificate renewed: serial %s, valid until %s", answer["serial"], answer["notAfter"])
        return str(answer["serial"])

    def ws_token(self, timeout: float = 10) -> str:
        """A short-lived token for /ws?token= (POST /gateways/{id}/ws-token over mutual TLS)."""
        status, answer = _post_json(f"{self.tls_url.rstrip('/')}/gateways/{self.gateway_id}/ws-token", {}, {},
                                    self.context(), timeout)
        if status != 200:
            raise OSError(f"ws-token: {status}: {(answer.get('error') or {}).get('message', '')}")
        return str(answer["token"])


class Renewer:
    """Checks every `interval` seconds whether 60% of the lifetime has passed, and renews then (retrying each check)."""

    def __init__(self, identity: Identity, interval: float = 60.0):
        self.identity = identity
        self.interval = interval
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cert-renewer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def check_once(self) -> bool:
        """Renew if due; True when a new certificate is in place. A failure keeps the current one (retried next time)."""
        try:
            if self.identity.renew_due():
                self.identity.renew()
                self.last_error = None
                return True
        except Exception as error:  # noqa: BLE001 - retried at the next check; the current one still serves
            self.last_error = f"{type(error).__name__}: {error}"
            log.warning("certificate renewal failed (retrying): %s", self.last_error)
        return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def enroll_main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m edge_gateway enroll",
                                     description="Enroll this gateway: a key made here, a certificate from the control plane")
    parser.add_argument("--url", required=True, help="the control plane's URL (the enrollment call needs no certificate)")
    parser.add_argument("--gateway-id", required=True)
    parser.add_argument("--token", default=os.environ.get("GATEWAY_ENROLLMENT_TOKEN"),
                        help="the enrollment token of POST /gateways (or GATEWAY_ENROLLMENT_TOKEN)")
    parser.add_argument("--dir", default=os.environ.get("GATEWAY_CERT_DIR", "gateway-identity"),
                        help="where the key and certificate are kept (GATEWAY_CERT_DIR)")
    parser.add_argument("--server-ca", default=os.environ.get("GATEWAY_SERVER_CA"),
                        help="a CA file to trust for the control plane's server certificate (the local stack's)")
    parser.add_argument("--tls-url", default=os.environ.get("CONTROL_PLANE_TLS_URL"),
                        help="the mutual-TLS URL for every later call (default: --url)")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token (or GATEWAY_ENROLLMENT_TOKEN) is required")
    try:
        enrolled = enroll(args.url, args.gateway_id, args.token, Path(args.dir), args.server_ca, args.tls_url)
    except EnrollmentFailed as failed:
        print(f"enrollment refused: {failed}", flush=True)
        return 1
    print(f"enrolled gateway {enrolled.gateway_id}: certificate {enrolled.serial} valid until {enrolled.not_after}; "
          f"key and certificate in {enrolled.directory / IDENTITY} (mode 0600)", flush=True)
    return 0
