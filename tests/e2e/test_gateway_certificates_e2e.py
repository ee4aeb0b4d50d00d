"""Gateway certificates end to end (issue 21): real TLS handshakes on the local stack's mutual-TLS port.

- `python -m edge_gateway enroll` makes the key on the host (mode 0600) and stores the certificate;
- a client with that certificate gets through the handshake and acts as the gateway's agent;
- refused at the handshake (as API Gateway refuses them): no certificate, self-signed, expired;
- refused by the app: revoked (the transport does not check revocation), another organization's
  gateway (404);
- a real `python -m edge_gateway` uploads, polls and acks commands with the certificate only (its
  WebSocket opened with a ws-token), and revoking its certificate mid-run stops the uplink at once
  with every record still buffered (counted: control plane + buffer = stored).
"""
from __future__ import annotations

import http.client
import json
import os
import ssl
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devstack.testing import REPO_ROOT, running_devstack
from tests.e2e.client import call
from tests.e2e.test_edge_gateway_e2e import GatewayProcess, store_many, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack():
    with running_devstack() as s:
        yield s


def new_site(stack, name: str) -> dict:
    org = call(stack.url, "POST", "/orgs", stack.admin_api_key, {"name": name}).json
    ops = call(stack.url, "POST", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"}).json["apiKey"]
    agent = call(stack.url, "POST", "/agents", ops, {"name": "edge"}).json
    gateway = call(stack.url, "POST", "/gateways", ops, {"agentId": agent["agentId"], "name": "site"}).json
    return {"org": org, "ops": ops, "agent": agent, "gateway": gateway}


def enroll_cli(stack, site: dict, directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_gateway", "enroll", "--url", stack.url,
         "--gateway-id", site["gateway"]["gatewayId"], "--token", site["gateway"]["enrollmentToken"],
         "--dir", str(directory), "--tls-url", stack.tls_url, "--server-ca", stack.server_ca_path],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def enrolled(stack, tmp_path_factory):
    site = new_site(stack, "certs e2e")
    directory = tmp_path_factory.mktemp("identity")
    done = enroll_cli(stack, site, directory)
    assert done.returncode == 0, done.stdout + done.stderr
    return {**site, "dir": directory}


def tls_call(stack, method: str, path: str, cert_file: Path | None = None, body=None, key: str | None = None):
    """One request over a real TLS handshake to the mutual-TLS port; (status, json)."""
    context = ssl.create_default_context(cafile=stack.server_ca_path)
    if cert_file is not None:
        context.load_cert_chain(cert_file)
    host, port = stack.tls_url.removeprefix("https://").rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=20)
    try:
        headers = {"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def handshake_refused(stack, cert_file: Path | None) -> bool:
    try:
        tls_call(stack, "GET", "/health", cert_file)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        return True
    return False


def write_identity(path: Path, cert: x509.Certificate, key) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


def signed_cert(issuer_key, issuer_name: x509.Name, subject_cn: str, not_before: datetime, not_after: datetime):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
            .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after).sign(issuer_key, hashes.SHA256()))
    return cert, key


# --- enrollment and the handshake ---------------------------------------------------------------

def test_enroll_makes_the_key_here_with_mode_0600(stack, enrolled):
    identity = enrolled["dir"] / "identity.pem"
    assert stat.S_IMODE(os.stat(identity).st_mode) == 0o600
    text = identity.read_text()
    cert = x509.load_pem_x509_certificate(text.encode())
    key = serialization.load_pem_private_key(text[text.index("-----BEGIN PRIVATE KEY"):].encode(), password=None)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    # the key never left the host: no item or secret of the control plane holds it
    ddb = stack.aws("dynamodb")
    pem_body = "".join(text[text.index("-----BEGIN PRIVATE KEY"):].splitlines()[1:-1])
    items = ddb.scan(TableName=stack.environment["MAIN_TABLE"])["Items"]
    assert pem_body[:40] not in json.dumps(items)


def test_a_certificate_call_acts_as_the_gateways_agent(stack, enrolled):
    agent_id = enrolled["agent"]["agentId"]
    status, body = tls_call(stack, "GET", f"/agents/{agent_id}/commands", enrolled["dir"] / "identity.pem")
    assert status == 200, body
    status, body = tls_call(stack, "POST", "/ingest", enrolled["dir"] / "identity.pem",
                            {"batchId": "b1", "records": [{"recordId": "r1", "table": "t", "data": {"x": 1},
                                                           "ts": "2026-01-01T00:00:00Z"}]})
    assert status == 200 and body["accepted"] == 1, body


def test_a_client_without_a_certificate_fails_the_handshake(stack, enrolled):
    assert handshake_refused(stack, None)


def test_a_self_signed_certificate_fails_the_handshake(stack, enrolled, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, enrolled["gateway"]["gatewayId"])])
    now = datetime.now(timezone.utc)
    cert, _ = signed_cert(key, name, enrolled["gateway"]["gatewayId"], now - timedelta(minutes=1), now + timedelta(days=1))
    assert handshake_refused(stack, write_identity(tmp_path / "self.pem", cert, _))


def test_an_expired_certificate_of_the_org_ca_fails_the_handshake(stack, enrolled, tmp_path):
    secrets = stack.aws("secretsmanager")
    [name] = [s["Name"] for s in secrets.list_secrets()["SecretList"]
              if s["Name"].endswith(f"/gateway-ca/{enrolled['org']['orgId']}")]
    secret = secrets.get_secret_value(SecretId=name)["SecretString"]
    ca_key = serialization.load_pem_private_key(secret.encode(), password=None)
    ca = x509.load_pem_x509_certificate((enrolled["dir"] / "chain.pem").read_bytes())
    now = datetime.now(timezone.utc)
    cert, key = signed_cert(ca_key, ca.subject, "old", now - timedelta(days=40), now - timedelta(days=10))
    assert handshake_refused(stack, write_identity(tmp_path / "expired.pem", cert, key))
    fresh, fresh_key = signed_cert(ca_key, ca.subject, "forged", now - timedelta(minutes=1), now + timedelta(days=1))
    # the same CA, in validity, but never issued by the control plane: through the handshake, refused by the app
    status, body = tls_call(stack, "GET", "/health", write_identity(tmp_path / "forged.pem", fresh, fresh_key))
    assert status == 200  # a public route
    status, body = tls_call(stack, "GET", f"/agents/{enrolled['agent']['agentId']}/commands", tmp_path / "forged.pem")
    assert status == 401 and body["error"]["code"] == "UNAUTHORIZED", body


def test_another_organizations_certificate_is_404_on_this_gateway(stack, enrolled, tmp_path):
    theirs = new_site(stack, "another org")
    done = enroll_cli(stack, theirs, tmp_path / "theirs")
    assert done.returncode == 0, done.stdout + done.stderr
    # trusted at the handshake (a CA made a moment ago is in the trust at once), then the app says no
    status, body = tls_call(stack, "POST", f"/gateways/{enrolled['gateway']['gatewayId']}/ws-token",
                            tmp_path / "theirs" / "identity.pem")
    assert status == 404 and body["error"]["code"] == "NOT_FOUND", body
    status, body = tls_call(stack, "GET", f"/agents/{enrolled['agent']['agentId']}/commands",
                            tmp_path / "theirs" / "identity.pem")
    assert status in (403, 404), body


def test_renew_over_mtls_and_an_enrollment_token_works_once(stack, enrolled, tmp_path):
    again = enroll_cli(stack, enrolled, tmp_path / "again")
    assert again.returncode == 1 and "401" in again.stdout
    from edge_gateway.tls import Identity

    identity = Identity(enrolled["dir"])
    before = identity.validity()[2]
    serial = identity.renew()
    assert serial != before and identity.validity()[2] == serial
    status, _ = tls_call(stack, "GET", f"/agents/{enrolled['agent']['agentId']}/commands", identity.path)
    assert status == 200


# --- the gateway process with its certificate ----------------------------------------------------

def ingested(stack, site: dict) -> int:
    count, token = 0, None
    while True:
        q = f"/ingest/records?agentId={site['agent']['agentId']}&limit=500" + (f"&nextToken={token}" if token else "")
        page = call(stack.url, "GET", q, site["ops"]).json
        count += len(page["items"])
        token = page["nextToken"]
        if not token:
            return count


def test_the_gateway_runs_on_its_certificate_and_revocation_stops_its_uplink_at_once(stack, tmp_path):
    site = new_site(stack, "gateway process")
    done = enroll_cli(stack, site, tmp_path / "identity")
    assert done.returncode == 0, done.stdout + done.stderr
    gateway = GatewayProcess(stack.url, "", tmp_path / "gw.db", GATEWAY_CERT_DIR=str(tmp_path / "identity"),
                             GATEWAY_COMMAND_POLL_SECONDS="1", GATEWAY_BATCH_RECORDS="50").start()
    try:
        health = call(gateway.url, "GET", "/health").json
        wait_until(lambda: call(gateway.url, "GET", "/health").json["checks"]["controlChannel"]["connected"], 20,
                   f"the control channel (ws-token) never connected: {health}")
        # uplink with the certificate
        store_many(gateway, 0, 500)
        wait_until(lambda: gateway.stats()["backlog"] == 0, 60, "the backlog never drained")
        assert ingested(stack, site) == 500
        # a command over the WebSocket (opened with a ws-token), acked over mutual TLS
        issued = call(stack.url, "POST", f"/agents/{site['agent']['agentId']}/commands", site["ops"], {"type": "ping"}).json
        wait_until(lambda: call(stack.url, "GET", f"/commands/{issued['commandId']}", site["ops"]).json["status"]
                   == "acked", 10, "the command was never acked")
        # revoke mid-run: stores keep coming, the uplink stops at once, nothing is lost
        serial = x509.load_pem_x509_certificate((tmp_path / "identity" / "identity.pem").read_bytes()).serial_number
        revoked = call(stack.url, "DELETE", f"/gateways/{site['gateway']['gatewayId']}/certificates/{serial:x}",
                       site["ops"])
        assert revoked.status == 204, revoked.json
        uplinked_at_revocation = ingested(stack, site)
        store_many(gateway, 500, 1000)
        wait_until(lambda: call(gateway.url, "GET", "/health").json["checks"]["uplink"]["consecutiveFailures"] >= 2,
                   30, "the uplink never saw the refusal")
        stats = gateway.stats()
        on_control_plane = ingested(stack, site)
        assert on_control_plane == uplinked_at_revocation == 500  # not one record after the revocation
        assert stats["backlog"] == 1000 and stats["counters"]["stored"] == 1500  # every record still buffered
        assert on_control_plane + stats["backlog"] == stats["counters"]["stored"]
        assert stats["counters"]["dropped"] == 0 and stats["counters"]["quarantined"] == 0
        wait_until(lambda: not call(gateway.url, "GET", "/health").json["checks"]["controlChannel"]["connected"], 20,
                   "the WebSocket opened with the revoked certificate's token stayed open")
    finally:
        gateway.stop()


def test_make_run_keeps_the_cas_across_a_restart(tmp_path):
    """The org CA keys (Secrets Manager, outside the state snapshot) and the server CA survive a restart:
    the gateway renews after it with the same trust."""
    state = tmp_path / "state"
    with running_devstack(state_dir=state, fresh=True) as first:
        site = new_site(first, "restart")
        assert enroll_cli(first, site, tmp_path / "identity").returncode == 0
        server_ca = Path(first.server_ca_path).read_bytes()
        wait_until(lambda: (state / "tls" / "gateway-ca-keys.json").exists(), 10, "the CA keys were never saved")
    assert stat.S_IMODE(os.stat(state / "tls" / "gateway-ca-keys.json").st_mode) == 0o600
    with running_devstack(state_dir=state) as again:
        assert Path(again.server_ca_path).read_bytes() == server_ca
        from edge_gateway.tls import Identity

        meta = json.loads((tmp_path / "identity" / "gateway.json").read_text())
        meta["tlsUrl"] = again.tls_url  # a new free port this time
        (tmp_path / "identity" / "gateway.json").write_text(json.dumps(meta))
        identity = Identity(tmp_path / "identity", again.server_ca_path)
        before = identity.validity()[2]
        assert identity.renew() != before
