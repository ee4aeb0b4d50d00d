"""The local stack's mutual-TLS port (issue 21): what API Gateway's mTLS custom domain does.

- Listens on TLS_PORT (default 8443; 0 picks a free port) with a server certificate of a local
  server CA made once and kept under the state directory (`tls/server-ca.pem`: clients trust it;
  its path is printed at start).
- Requires a client certificate chaining to one of the organizations' gateway CAs: a client without
  one, or with one of an unknown CA, fails the handshake (as API Gateway refuses it before the
  function runs). The trust is the CA items in the main table (GSI1 `GWCAS`), read again on each
  handshake that comes after a new CA appeared: the read is one Query on the embedded moto per new
  connection (keep-alive connections pay it once).
- Hands the app the client certificate as API Gateway does: `requestContext.identity.clientCert`
  {clientCertPem, subjectDN, issuerDN, serialNumber, validity {notBefore, notAfter}}
  (`ClientCertGateway`). Revocation is the app's check, as on AWS.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import ssl
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
from chalice.local import LocalGateway
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devstack.http_protocol import ContractH11Protocol

log = logging.getLogger("devstack")

DEFAULT_TLS_PORT = 8443
CA_PARTITION = "GWCAS"  # chalicelib/gateways/store.py: every organization's CA item


# --- the server's own certificate ----------------------------------------------------------

def server_credentials(directory: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """(server CA certificate, server certificate chain, server key) under `directory`, made on first use.

    The server certificate is re-made on every start (for the host names of this start); the CA stays,
    so clients that trust `server-ca.pem` keep trusting the stack across restarts."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, ca_key_path = directory / "server-ca.pem", directory / "server-ca.key"
    now = datetime.now(timezone.utc)
    if ca_path.exists() and ca_key_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devstack local server CA")])
        ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
              .not_valid_after(now + timedelta(days=3650))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        _write_private(ca_key_path, ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
        ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devstack")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            # Python 3.13's default client context is X.509-strict: it wants both key identifiers.
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return ca_path, cert_path, key_path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


# --- the organizations' CAs as the client trust ---------------------------------------------

class OrgTrust:
    """The SSL context of the TLS port and the org CAs loaded into it (CAs are only ever added).

    With `keys_file`, the organizations' CA private keys (Secrets Manager secrets `*/gateway-ca/*`,
    which the state snapshot and journal do not cover) are copied there (mode 0600) whenever a new
    CA appears, and put back into the embedded Secrets Manager at start: a restarted `make run`
    renews and enrolls with the same CAs its gateways already trust.
    """

    def __init__(self, cert_path: Path, key_path: Path, table: str, keys_file: Path | None = None) -> None:
        self.table = table
        self.keys_file = keys_file
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2  # as API Gateway's custom domains
        self.context.load_cert_chain(cert_path, key_path)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.sni_callback = self._on_hello
        self._loaded: set[str] = set()
        self._lock = threading.Lock()
        self._ddb: Any = None

    def refresh(self) -> int:
        """Load every CA not loaded yet; returns how many were added."""
        if self._ddb is None:
            self._ddb = boto3.client("dynamodb")
        added = 0
        with self._lock:
            start: dict[str, Any] | None = None
            while True:
                args: dict[str, Any] = {"TableName": self.table, "IndexName": "GSI1",
                                        "KeyConditionExpression": "GSI1PK = :pk",
                                        "ExpressionAttributeValues": {":pk": {"S": CA_PARTITION}}}
                if start:
                    args["ExclusiveStartKey"] = start
                page = self._ddb.query(**args)
                for item in page.get("Items", []):
                    pem = item.get("certPem", {}).get("S")
                    if pem and pem not in self._loaded:
                        self.context.load_verify_locations(cadata=pem)
                        self._loaded.add(pem)
                        added += 1
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
        if added:
            log.info("TLS port: %d organization CA(s) added to the client trust (%d in all)", added, len(self._loaded))
            self._save_keys()
        return added

    def _save_keys(self) -> None:
        if self.keys_file is None:
            return
        secrets = boto3.client("secretsmanager")
        kept: dict[str, str] = {}
        for page in secrets.get_paginator("list_secrets").paginate():
            for entry in page.get("SecretList", []):
                if "/gateway-ca/" in entry["Name"]:
                    kept[entry["Name"]] = secrets.get_secret_value(SecretId=entry["Name"])["SecretString"]
        _write_private(self.keys_file, json.dumps(kept).encode())

    def restore_keys(self) -> int:
        """Put the CA keys saved by an earlier run back into Secrets Manager; returns how many."""
        if self.keys_file is None or not self.keys_file.exists():
            return 0
        secrets = boto3.client("secretsmanager")
        restored = 0
        for name, value in json.loads(self.keys_file.read_text()).items():
            try:
                secrets.create_secret(Name=name, SecretString=value)
                restored += 1
            except secrets.exceptions.ResourceExistsException:
                pass
        return restored

    def _on_hello(self, sock: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        # Runs on the ClientHello, before the client's certificate arrives: a CA made a moment ago is
        # trusted by the very next handshake.
        try:
            self.refresh()
        except Exception:  # noqa: BLE001 - the handshake goes on with the CAs already loaded
            log.exception("TLS port: reading the organization CAs failed")


# --- handing the certificate to the app ----------------------------------------------------------

def _dn(name: x509.Name) -> str:
    return name.rfc4514_string()


def _apigw_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%b %d %H:%M:%S %Y GMT")


def client_cert_structure(der: bytes) -> dict[str, Any]:
    """`requestContext.identity.clientCert` as API Gateway's mutual TLS fills it in."""
    cert = x509.load_der_x509_certificate(der)
    serial = format(cert.serial_number, "x")
    serial = serial if len(serial) % 2 == 0 else "0" + serial
    return {
        "clientCertPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "subjectDN": _dn(cert.subject),
        "issuerDN": _dn(cert.issuer),
        "serialNumber": ":".join(serial[i:i + 2] for i in range(0, len(serial), 2)),
        "validity": {"notBefore": _apigw_time(cert.not_valid_before_utc),
                     "notAfter": _apigw_time(cert.not_valid_after_utc)},
    }


class ClientCertGateway(LocalGateway):
    """Chalice's LocalGateway, putting a client certificate into the event's request context."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    def handle_request_with_cert(self, client_cert: dict[str, Any] | None, method: str, path: str,
                                 headers: dict[str, str], body: bytes | None) -> Any:
        self._local.client_cert = client_cert
        try:
            return self.handle_request(method=method, path=path, headers=headers, body=body)
        finally:
            self._local.client_cert = None

    def _generate_lambda_event(self, *args: Any, **kwargs: Any) -> Any:
        event = super()._generate_lambda_event(*args, **kwargs)
        client_cert = getattr(self._local, "client_cert", None)
        if client_cert is not None:
            event["requestContext"].setdefault("identity", {})["clientCert"] = client_cert
        return event


async def _with_client_cert(app: Any, der: bytes | None, scope: dict[str, Any], receive: Any, send: Any) -> None:
    if der is not None:
        scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": {"client_cert_der": der}}}
    await app(scope, receive, send)


class MutualTlsProtocol(ContractH11Protocol):
    """uvicorn's protocol on the TLS port: the verified peer certificate rides in each request's scope
    (`scope["extensions"]["tls"]["client_cert_der"]`)."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.app = functools.partial(_with_client_cert, self.app, der)


def client_cert_of(scope: dict[str, Any]) -> dict[str, Any] | None:
    der = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_der")
    return client_cert_structure(der) if der else None


def tls_port() -> int:
    raw = os.environ.get("TLS_PORT")
    return int(raw) if raw not in (None, "") else DEFAULT_TLS_PORT


class TlsPort:
    """The TLS port's uvicorn server, on its own thread, serving the same ASGI app as the plain port."""

    def __init__(self, asgi: Any, host: str, port: int, directory: Path, table: str) -> None:
        import socket
        import uvicorn

        self.sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self.sock.getsockname()[1]
        public_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.ca_path, cert_path, key_path = server_credentials(directory, sorted({public_host, "127.0.0.1"}))
        self.trust = OrgTrust(cert_path, key_path, table, keys_file=directory / "gateway-ca-keys.json")
        restored = self.trust.restore_keys()
        if restored:
            log.info("TLS port: %d organization CA key(s) restored from %s", restored, directory)
        self.trust.refresh()
        trust = self.trust
        self._stop = threading.Event()
        # New CAs are also picked up between handshakes (so their keys are saved within a second).
        self.watcher = threading.Thread(target=self._watch, name="tls-trust", daemon=True)

        class _Config(uvicorn.Config):
            def load(self) -> None:
                super().load()
                self.ssl = trust.context  # our context: client certificates required, org CAs as trust

        self.server = uvicorn.Server(_Config(asgi, host=host, port=self.port, lifespan="off", http=MutualTlsProtocol,
                                             ws="websockets", ws_per_message_deflate=False,
                                             timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="uvicorn-tls")
        host_text = f"[{public_host}]" if ":" in public_host else public_host
        self.url = f"https://{host_text}:{self.port}"

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.trust.refresh()
            except Exception:  # noqa: BLE001 - the next pass tries again
                log.exception("TLS port: refreshing the organization CAs failed")

    def start(self) -> None:
        self.watcher.start()
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the TLS port stopped while starting")
            self.thread.join(0.05)
        log.info("TLS port (mutual TLS) on %s; server CA %s", self.url, self.ca_path)

    def stop(self) -> None:
        self._stop.set()
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join()
