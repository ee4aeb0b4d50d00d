"""Gateways (issue 21): enrollment, mutual-TLS calls, renewal, revocation, WebSocket tokens, and every
certificate bad input (a 4xx in the contract's shape, audited, nothing changed).

Mutual-TLS calls go through the same LocalGateway the local stack's TLS port uses
(devstack/tls.py ClientCertGateway), which puts `requestContext.identity.clientCert` into the
event exactly as API Gateway's mutual TLS does; the app sees nothing else.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


# --- helpers ---------------------------------------------------------------------------------

def csr_pem(key=None, cn: str | None = None, sans: list[str] | None = None) -> tuple[object, str]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return key, builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def self_signed(serial: int | None = None, cn: str = "x", days: int = 30, key=None, issuer_key=None,
                issuer_name: x509.Name | None = None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name).public_key(key.public_key())
            .serial_number(serial or x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=days)).sign(issuer_key or key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class Mtls:
    """Calls with a client certificate in the request context (as API Gateway's mutual TLS hands it)."""

    def __init__(self, app_module):
        from chalice.config import Config
        from devstack.tls import ClientCertGateway

        self.gateway = ClientCertGateway(app_module.app, Config())

    def call(self, method: str, path: str, cert_pem: str | None, body=None, key: str | None = None):
        from tests.conftest import Result
        from devstack.tls import client_cert_structure

        structure = None
        if cert_pem is not None:
            structure = client_cert_structure(x509.load_pem_x509_certificate(cert_pem.encode())
                                              .public_bytes(serialization.Encoding.DER))
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        response = self.gateway.handle_request_with_cert(structure, method, path, headers,
                                                         json.dumps(body).encode() if body is not None else None)
        raw = response.get("body") or b""
        text = raw.decode() if isinstance(raw, bytes) else raw
        return Result(response["statusCode"], response.get("headers", {}), json.loads(text) if text else None)


@pytest.fixture
def mtls(app_module):
    from chalicelib.core import certauth

    certauth.forget_cas()  # a fresh AWS account per module: no CA of another module's run
    return Mtls(app_module)


@pytest.fixture
def site(http, fleet):
    """An operator, an agent, and a gateway created for it (token not yet used)."""
    agent_id, agent_key = fleet.register("edge-1")
    r = http.post("/gateways", fleet.operator, {"agentId": agent_id, "name": "site-a"})
    assert r.status == 201, r.json
    return {"fleet": fleet, "agentId": agent_id, "agentKey": agent_key, **r.json}


def enroll(http, site, csr: str, token: str | None = None):
    return http.post(f"/gateways/{site['gatewayId']}/enroll", token or site["enrollmentToken"], {"csr": csr})


def enrolled(http, site) -> dict:
    key, csr = csr_pem()
    r = enroll(http, site, csr)
    assert r.status == 201, r.json
    return {**r.json, "key": key}


def audit_of(http, site, entity_type: str, entity_id: str) -> list[dict]:
    r = http.get(f"/audit?entityType={entity_type}&entityId={entity_id}", site["fleet"].operator)
    assert r.status == 200, r.json
    return r.json["items"]


def denials(http, site) -> list[str]:
    return [e["details"]["reason"] for e in audit_of(http, site, "auth", f"gateway:{site['gatewayId']}")]


def assert_error(result, status: int, code: str):
    assert result.status == status, result.json
    assert set(result.json) == {"error"} and result.json["error"]["code"] == code, result.json


def commands_path(site) -> str:
    return f"/agents/{site['agentId']}/commands?status=pending"


# --- the happy path ---------------------------------------------------------------------------

def test_create_shows_the_token_once_and_stores_only_its_hash(http, site):
    from chalicelib.aws import clients

    assert site["enrollmentToken"].startswith("gwe.")
    items = clients.client("dynamodb").scan(TableName=_main_table())["Items"]
    assert site["enrollmentToken"] not in json.dumps(items)
    replay_key = {"Idempotency-Key": "gw-create-1"}
    body = {"agentId": site["agentId"], "name": "site-b"}
    first = http.post("/gateways", site["fleet"].operator, body, headers=replay_key)
    again = http.post("/gateways", site["fleet"].operator, body, headers=replay_key)
    assert first.json["enrollmentToken"] and "enrollmentToken" not in again.json
    assert again.json["gatewayId"] == first.json["gatewayId"]


def test_enroll_issues_a_certificate_whose_subject_the_server_sets(http, site, mtls):
    key, csr = csr_pem(cn=site["gatewayId"])
    r = enroll(http, site, csr)
    assert r.status == 201, r.json
    cert = x509.load_pem_x509_certificate(r.json["certificatePem"].encode())
    ca = x509.load_pem_x509_certificate(r.json["chainPem"].encode())
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == site["gatewayId"]
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == site["fleet"].org["orgId"]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"urn:controlplane:org:{site['fleet'].org['orgId']}:gateway:{site['gatewayId']}"]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=30) <= lifetime <= timedelta(days=30, minutes=6)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert format(cert.serial_number, "x") == r.json["serial"]
    assert "enrolled" in [e["action"] for e in audit_of(http, site, "gateway", site["gatewayId"])]

    # the certificate is the gateway's agent (agent scope): its own agent's routes, not another's, nothing above
    ok = mtls.call("GET", commands_path(site), r.json["certificatePem"])
    assert ok.status == 200, ok.json
    other_agent, _ = site["fleet"].register("other")
    assert_error(mtls.call("GET", f"/agents/{other_agent}/commands", r.json["certificatePem"]), 403, "FORBIDDEN")
    assert_error(mtls.call("GET", "/gateways", r.json["certificatePem"]), 403, "FORBIDDEN")


def test_the_ca_key_is_in_secrets_manager_never_in_a_table(http, site):
    from chalicelib.aws import clients

    issued = enrolled(http, site)
    org_id = site["fleet"].org["orgId"]
    secret = clients.client("secretsmanager").get_secret_value(SecretId=_secret_name(org_id))
    assert "PRIVATE KEY" in secret["SecretString"]
    assert "PRIVATE KEY" not in json.dumps(clients.client("dynamodb").scan(TableName=_main_table())["Items"])
    # the mTLS truststore bundle (S3, the custom domain's truststore) holds the new CA, public only
    from chalicelib.core.config import settings

    bundle = clients.client("s3").get_object(Bucket=settings().truststore_bucket, Key="truststore.pem")["Body"].read()
    assert issued["chainPem"].encode() in bundle and b"PRIVATE" not in bundle


def test_get_and_list_show_serials_validity_and_last_seen(http, site, mtls):
    issued = enrolled(http, site)
    assert mtls.call("GET", commands_path(site), issued["certificatePem"]).status == 200
    r = http.get(f"/gateways/{site['gatewayId']}", site["fleet"].operator)
    assert r.status == 200, r.json
    assert r.json["status"] == "enrolled" and r.json["lastSeenAt"]
    [cert] = r.json["certificates"]
    assert cert["serial"] == issued["serial"] and cert["notAfter"] == issued["notAfter"]
    assert cert["status"] == "active" and cert["lastSeenAt"] and cert["revokedAt"] is None
    listed = http.get("/gateways", site["fleet"].operator)
    [mine] = [g for g in listed.json["items"] if g["gatewayId"] == site["gatewayId"]]
    assert mine["certificates"][0]["serial"] == issued["serial"] and mine["lastSeenAt"]


def test_last_seen_is_written_at_most_once_a_minute(http, site, mtls, clock, monkeypatch):
    from chalicelib.aws import dynamo

    issued = enrolled(http, site)
    writes = []
    real = dynamo.transact
    monkeypatch.setattr(dynamo, "transact", lambda ops: (writes.append(ops), real(ops))[1])
    for _ in range(5):
        assert mtls.call("GET", commands_path(site), issued["certificatePem"]).status == 200
    assert len(writes) == 1
    clock.shift(61)
    assert mtls.call("GET", commands_path(site), issued["certificatePem"]).status == 200
    assert len(writes) == 2


def test_renew_over_mtls_gives_a_new_certificate(http, site, mtls):
    issued = enrolled(http, site)
    _, csr = csr_pem()
    r = mtls.call("POST", f"/gateways/{site['gatewayId']}/renew", issued["certificatePem"], {"csr": csr})
    assert r.status == 201, r.json
    assert r.json["serial"] != issued["serial"]
    assert mtls.call("GET", commands_path(site), r.json["certificatePem"]).status == 200
    serials = [c["serial"] for c in http.get(f"/gateways/{site['gatewayId']}", site["fleet"].operator).json["certificates"]]
    assert set(serials) == {issued["serial"], r.json["serial"]}


def test_ws_token_opens_the_websocket_but_rest_refuses_it(http, site, mtls, app_module):
    issued = enrolled(http, site)
    r = mtls.call("POST", f"/gateways/{site['gatewayId']}/ws-token", issued["certificatePem"])
    assert r.status == 200, r.json
    token = r.json["token"]
    assert token.startswith("cpw.") and r.json["expiresAt"]
    assert_error(http.get(commands_path(site), token), 401, "UNAUTHORIZED")
    from chalicelib.core.auth import authenticate

    principal = authenticate(token)  # what /ws?token= checks ($connect)
    assert principal.agent_id == site["agentId"] and principal.scope.value == "agent"
    keys = http.get("/keys", site["fleet"].org["adminKey"]).json["items"]
    assert not any(k["name"].startswith("WebSocket token") for k in keys)
    # an API key cannot mint one: the route is mutual TLS only
    assert_error(http.post(f"/gateways/{site['gatewayId']}/ws-token", site["agentKey"]), 401, "UNAUTHORIZED")


def test_revoking_refuses_the_certificate_from_the_next_call_on(http, site, mtls):
    issued = enrolled(http, site)
    token = mtls.call("POST", f"/gateways/{site['gatewayId']}/ws-token", issued["certificatePem"]).json["token"]
    assert mtls.call("GET", commands_path(site), issued["certificatePem"]).status == 200
    r = http.delete(f"/gateways/{site['gatewayId']}/certificates/{issued['serial']}", site["fleet"].operator)
    assert r.status == 204, r.json
    assert_error(mtls.call("GET", commands_path(site), issued["certificatePem"]), 401, "UNAUTHORIZED")
    assert "revoked client certificate" in denials(http, site)
    shown = http.get(f"/gateways/{site['gatewayId']}", site["fleet"].operator).json["certificates"][0]
    assert shown["status"] == "revoked" and shown["revokedAt"]
    # idempotent; another gateway's path or an unknown serial: 404
    assert http.delete(f"/gateways/{site['gatewayId']}/certificates/{issued['serial']}", site["fleet"].operator).status == 204
    assert_error(http.delete(f"/gateways/{site['gatewayId']}/certificates/abc", site["fleet"].operator), 404, "NOT_FOUND")
    assert_error(http.delete(f"/gateways/{site['gatewayId']}/certificates/nothex", site["fleet"].operator), 404,
                 "NOT_FOUND")
    colons = ":".join(issued["serial"].zfill(32)[i:i + 2] for i in range(0, 32, 2))  # API Gateway's serialNumber form
    assert http.delete(f"/gateways/{site['gatewayId']}/certificates/{colons}", site["fleet"].operator).status == 204
    # the revoked certificate mints no more WebSocket tokens; the one it minted had its sockets closed at
    # revocation (tests/e2e/test_gateway_certificates_e2e.py) and REST never took it
    assert_error(mtls.call("POST", f"/gateways/{site['gatewayId']}/ws-token", issued["certificatePem"]), 401,
                 "UNAUTHORIZED")
    assert_error(http.get(commands_path(site), token), 401, "UNAUTHORIZED")


# --- bad inputs: tokens -------------------------------------------------------------------------

def test_a_reused_enrollment_token_is_refused_and_audited(http, site):
    enrolled(http, site)
    _, csr = csr_pem()
    assert_error(enroll(http, site, csr), 401, "UNAUTHORIZED")
    assert "enrollment token already used" in denials(http, site)
    assert len(http.get(f"/gateways/{site['gatewayId']}", site["fleet"].operator).json["certificates"]) == 1


def test_an_expired_enrollment_token_is_refused_and_audited(http, site, clock):
    clock.shift(3601)
    _, csr = csr_pem()
    assert_error(enroll(http, site, csr), 401, "UNAUTHORIZED")
    assert "enrollment token expired" in denials(http, site)
    assert http.get(f"/gateways/{site['gatewayId']}", site["fleet"].operator).json["status"] == "pending"


def test_a_wrong_or_missing_enrollment_token_is_refused(http, site):
    _, csr = csr_pem()
    assert_error(enroll(http, site, csr, token="gwe.wrong"), 401, "UNAUTHORIZED")
    r = http.post(f"/gateways/{site['gatewayId']}/enroll", None, {"csr": csr})
    assert_error(r, 401, "UNAUTHORIZED")
    assert "unknown gateway or wrong enrollment token" in denials(http, site)
    assert_error(http.post("/gateways/01NOSUCHGATEWAY0000000000/enroll", site["enrollmentToken"], {"csr": csr}),
                 401, "UNAUTHORIZED")
    assert enroll(http, site, csr).status == 201  # nothing was spent


# --- bad inputs: CSRs (400, audited, the token not spent) ------------------------------------------

def _csr_refused(http, site, csr: str, words: str):
    r = enroll(http, site, csr)
    assert_error(r, 400, "VALIDATION_ERROR")
    assert r.json["error"]["details"][0]["field"] == "csr"
    assert words in r.json["error"]["message"], r.json
    events = audit_of(http, site, "gateway", site["gatewayId"])
    assert any(e["action"] == "enroll-refused" and words in e["details"]["reason"] for e in events)
    assert http.get(f"/gateways/{site['gatewayId']}", site["fleet"].operator).json["status"] == "pending"


def test_rsa_below_2048_bits_is_refused(http, site):
    _, csr = csr_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    _csr_refused(http, site, csr, "at least 2048 bits")


def test_rsa_2048_is_accepted(http, site):
    _, csr = csr_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert enroll(http, site, csr).status == 201


def test_another_curve_is_refused(http, site):
    _, csr = csr_pem(ec.generate_private_key(ec.SECP384R1()))
    _csr_refused(http, site, csr, "P-256")


def test_a_csr_asking_for_another_gateways_name_is_refused(http, site):
    other = http.post("/gateways", site["fleet"].operator, {"agentId": site["agentId"], "name": "site-other"}).json
    _, csr = csr_pem(cn=other["gatewayId"])
    _csr_refused(http, site, csr, "not this gateway's")
    _, csr = csr_pem(sans=["site-other"])
    _csr_refused(http, site, csr, "not this gateway's")
    _, own = csr_pem(cn="site-a", sans=[site["gatewayId"]])  # its own id and name: fine (the server sets them anyway)
    assert enroll(http, site, own).status == 201


def test_garbage_and_huge_csrs_are_refused(http, site):
    _csr_refused(http, site, "hello", "not a PEM certificate request")
    _csr_refused(http, site, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                 "not a readable")
    _csr_refused(http, site, "-----BEGIN CERTIFICATE REQUEST-----\n" + "A" * 20000, "at most")
    _, csr = csr_pem()
    tampered = csr.replace(csr.splitlines()[3], csr.splitlines()[3][:-4] + "AAAA")
    r = enroll(http, site, tampered)
    assert_error(r, 400, "VALIDATION_ERROR")


# --- bad inputs: certificates (401 audited, or 404 for another organization's gateway) ---------------

def test_no_certificate_on_a_mutual_tls_route(http, site, mtls):
    issued = enrolled(http, site)
    _, csr = csr_pem()
    assert_error(mtls.call("POST", f"/gateways/{site['gatewayId']}/renew", None, {"csr": csr}), 401, "UNAUTHORIZED")
    r = mtls.call("POST", f"/gateways/{site['gatewayId']}/renew", None, {"csr": csr}, key=site["agentKey"])
    assert_error(r, 401, "UNAUTHORIZED")
    assert any("needs the gateway's client certificate" in e["details"]["reason"]
               for e in audit_of(http, site, "auth", f"agent:{site['agentId']}"))
    assert [c["serial"] for c in http.get(f"/gateways/{site['gatewayId']}", site["fleet"].operator).json[
        "certificates"]] == [issued["serial"]]  # nothing issued


def test_a_self_signed_certificate_is_refused(http, site, mtls):
    issued = enrolled(http, site)
    serial = int(issued["serial"], 16)
    forged = self_signed(serial=serial, cn=site["gatewayId"])  # even with the real serial
    assert_error(mtls.call("GET", commands_path(site), forged), 401, "UNAUTHORIZED")
    assert "client certificate is not the one issued with its serial" in denials(http, site)
    assert_error(mtls.call("GET", commands_path(site), self_signed()), 401, "UNAUTHORIZED")


def test_another_organizations_ca(http, root, site, mtls):
    from chalicelib.aws import clients

    issued = enrolled(http, site)
    # a second organization with its own gateway and CA
    other_org = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    op = http.post("/keys", other_org["adminKey"], {"name": "op", "scope": "operator"}).json["apiKey"]
    agent = http.post("/agents", op, {"name": "theirs"}).json
    theirs = http.post("/gateways", op, {"agentId": agent["agentId"], "name": "theirs"}).json
    _, csr = csr_pem()
    their_cert = http.post(f"/gateways/{theirs['gatewayId']}/enroll", theirs["enrollmentToken"], {"csr": csr}).json
    assert their_cert["chainPem"] != issued["chainPem"]
    # their valid certificate on our gateway: 404 (never reveal it exists)
    _, csr2 = csr_pem()
    assert_error(mtls.call("POST", f"/gateways/{site['gatewayId']}/renew", their_cert["certificatePem"], {"csr": csr2}),
                 404, "NOT_FOUND")
    # a certificate signed by their CA's key that claims our serial and gateway: refused
    their_key = clients.client("secretsmanager").get_secret_value(
        SecretId=_secret_name(other_org["orgId"]))["SecretString"]
    their_ca_key = serialization.load_pem_private_key(their_key.encode(), password=None)
    their_ca = x509.load_pem_x509_certificate(their_cert["chainPem"].encode())
    forged = self_signed(serial=int(issued["serial"], 16), cn=site["gatewayId"], issuer_key=their_ca_key,
                         issuer_name=their_ca.subject)
    assert_error(mtls.call("GET", commands_path(site), forged), 401, "UNAUTHORIZED")
    assert "client certificate is not the one issued with its serial" in denials(http, site)


def test_an_expired_certificate_is_refused(http, site, mtls, clock):
    issued = enrolled(http, site)
    clock.shift(31 * 24 * 3600)
    assert_error(mtls.call("GET", commands_path(site), issued["certificatePem"]), 401, "UNAUTHORIZED")
    assert "expired client certificate" in denials(http, site)


def test_garbage_in_the_client_cert_structure_is_401(http, site, mtls):
    r = mtls.gateway.handle_request_with_cert({"clientCertPem": "not a cert"}, "GET", commands_path(site),
                                              {"content-type": "application/json"}, None)
    assert r["statusCode"] == 401


def test_an_api_key_with_a_certificate_is_the_key(http, site, mtls):
    """On an mTLS-only custom domain every caller presents a certificate; the Authorization header names the caller."""
    issued = enrolled(http, site)
    r = mtls.call("GET", "/gateways", issued["certificatePem"], key=site["fleet"].operator)
    assert r.status == 200, r.json


def test_gateway_routes_need_an_operator(http, site):
    assert_error(http.get("/gateways"), 401, "UNAUTHORIZED")
    assert_error(http.get("/gateways", site["agentKey"]), 403, "FORBIDDEN")
    assert_error(http.post("/gateways", site["fleet"].operator, {"agentId": "nope", "name": "x"}), 404, "NOT_FOUND")
    assert_error(http.post("/gateways", site["fleet"].operator, {"agentId": site["agentId"], "name": "bad name"}),
                 400, "VALIDATION_ERROR")


def _main_table() -> str:
    from chalicelib.core.config import settings

    return settings().main_table


def _secret_name(org_id: str) -> str:
    from chalicelib.core.config import settings

    return f"{settings().stack_name}/gateway-ca/{org_id}"


def test_a_wrong_method_with_a_valid_certificate_is_405_not_401(http, site, mtls):
    issued = enrolled(http, site)
    assert_error(mtls.call("PUT", "/ingest", issued["certificatePem"], {}), 405, "METHOD_NOT_ALLOWED")
    assert_error(mtls.call("PUT", "/ingest", self_signed(), {}), 401, "UNAUTHORIZED")
