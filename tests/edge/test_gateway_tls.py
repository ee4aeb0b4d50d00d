"""The gateway's certificate handling without a control plane: when renewal is due, what a renewal writes,
and the configuration that switches the gateway from an API key to its certificate (issue 21)."""
from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_gateway import tls
from edge_gateway.config import Config


def identity_dir(tmp_path, not_before: datetime, days: float = 30):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(not_before).not_valid_after(not_before + timedelta(days=days))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tls._write_private(tmp_path / tls.IDENTITY, pem)
    (tmp_path / tls.META).write_text(json.dumps({"gatewayId": "gw", "tlsUrl": "https://127.0.0.1:9"}))
    return tls.Identity(tmp_path)


def test_renewal_is_due_before_two_thirds_of_the_lifetime(tmp_path):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    identity = identity_dir(tmp_path, start)
    day = 24 * 3600
    assert not identity.renew_due(start.timestamp() + 17.9 * day)
    assert identity.renew_due(start.timestamp() + 18 * day)  # 60%: day 18 of 30, before day 20
    assert identity.validity()[2] == "7"


def test_the_identity_file_is_the_owners_only(tmp_path):
    identity_dir(tmp_path, datetime.now(timezone.utc))
    assert stat.S_IMODE(os.stat(tmp_path / tls.IDENTITY).st_mode) == 0o600


def test_a_failed_renewal_is_retried_and_the_current_certificate_kept(tmp_path, monkeypatch):
    identity = identity_dir(tmp_path, datetime.now(timezone.utc) - timedelta(days=25))
    before = (tmp_path / tls.IDENTITY).read_bytes()
    monkeypatch.setattr(tls, "_post_json", lambda *a, **kw: (503, {"error": {"message": "busy"}}))
    renewer = tls.Renewer(identity, interval=3600)
    assert renewer.check_once() is False
    assert "busy" in (renewer.last_error or "") and (tmp_path / tls.IDENTITY).read_bytes() == before


def test_a_certificate_directory_replaces_the_api_key(tmp_path):
    with pytest.raises(SystemExit):
        Config.from_env({"CONTROL_PLANE_URL": "http://cp", "GATEWAY_CERT_DIR": str(tmp_path)})  # no identity yet
    identity_dir(tmp_path, datetime.now(timezone.utc))
    config = Config.from_env({"CONTROL_PLANE_URL": "http://cp", "GATEWAY_CERT_DIR": str(tmp_path)})
    assert config.cert_dir == str(tmp_path) and config.api_key == ""
