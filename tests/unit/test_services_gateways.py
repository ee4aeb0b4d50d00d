"""chalicelib/gateways/service.py on the fake unit of work (no moto): create, enroll, renew, revoke, ws-token;
and the pure certificate rules (chalicelib/gateways/rules.py) beside core/certauth.py."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.core import certauth, clock
from chalicelib.core.auth import Scope
from chalicelib.core.certauth import GatewayPrincipal
from chalicelib.core.errors import Forbidden, NotFound, Unauthorized, ValidationError
from chalicelib.gateways import adapters, models, rules, service, store
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, FakeTx, fake_ctx, principal

NOW = 1_800_000_000.0
GW = "01GW00000000000000000000000"


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


@pytest.fixture
def denials(monkeypatch):
    seen: list[tuple] = []
    monkeypatch.setattr(service.audit, "record_denial", lambda *a, **kw: seen.append(a))
    return seen


@pytest.fixture
def ca(monkeypatch):
    """A CA made on first need: the key 'stored' in a dict standing for Secrets Manager."""
    secrets: dict[str, str] = {}
    cas: dict[str, str] = {}
    monkeypatch.setattr(adapters, "ca_key", lambda org: secrets.get(org))
    monkeypatch.setattr(adapters, "create_ca_key", lambda org, pem: secrets.setdefault(org, pem) == pem)
    monkeypatch.setattr(adapters, "truststore_configured", lambda: False)  # sync_truststore: tests below
    monkeypatch.setattr(store, "get_ca", lambda org: store.StoredCa(org, cas[org]) if org in cas else None)
    monkeypatch.setattr(store, "all_cas", lambda: [store.StoredCa(o, p) for o, p in cas.items()])
    return {"secrets": secrets, "cas": cas}


def _own_tx(monkeypatch, ledger):
    """The service's stand-alone commits (refusal audits, the CA item) go to the same ledger."""
    monkeypatch.setattr(service, "Tx", lambda ctx: FakeTx(ctx, ledger))


def _csr(key=None, cn: str | None = None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)] if cn else [])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM).decode()


def _gateway_item(token: str, **changes) -> dict:
    return {"orgId": ORG, "gatewayId": GW, "agentId": "A1", "name": "site", "createdAt": clock.iso(NOW - 10),
            "enrollHash": service._token_hash(token), "enrollExpiresAt": clock.iso(NOW + 3000), "certs": {}, **changes}


def test_create_stores_the_token_hash_and_shows_the_token_once():
    ctx, ledger = fake_ctx(principal())
    out = service.create(ctx, models.CreateGatewayRequest(agent_id="A1", name="site"))
    body = assert_declared("POST", "/gateways", out)
    assert body["enrollmentToken"].startswith("gwe.") and body["enrollmentExpiresAt"] == clock.iso(NOW + 3600)
    assert ledger.names()[:2] == ["agent", "gateway"]
    item = ledger.committed[-1]["gateway"].item
    assert body["enrollmentToken"] not in str(item) and item["enrollHash"] == service._token_hash(body["enrollmentToken"])


def test_create_for_a_missing_agent_is_404():
    ctx, ledger = fake_ctx(principal())
    ledger.fail["agent"] = 1
    with pytest.raises(NotFound):
        service.create(ctx, models.CreateGatewayRequest(agent_id="A1", name="site"))


def test_enroll_spends_the_token_with_the_certificate_in_one_commit(monkeypatch, ca):
    ctx, ledger = fake_ctx(None)
    _own_tx(monkeypatch, ledger)
    monkeypatch.setattr(store, "get_gateway", lambda gid: _gateway_item("gwe.t"))
    out = service.enroll(ctx, GW, "gwe.t", _csr())
    body = assert_declared("POST", "/gateways/{gatewayId}/enroll", out)
    cert = x509.load_pem_x509_certificate(body["certificatePem"].encode())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(body["chainPem"].encode()))
    assert ledger.names(0) == ["ca", "audit:gatewayCa:" + ORG + ":created"]  # the CA, made on first need
    assert ledger.names(1)[:2] == ["gateway", "certificate"]
    written = ledger.committed[1]["certificate"].item
    from cryptography.hazmat.primitives.serialization import Encoding
    assert written["fingerprint"] == certauth.fingerprint(cert.public_bytes(Encoding.DER))
    assert written["serial"] == certauth.serial_text(cert.serial_number) == body["serial"]
    assert "PRIVATE" not in str(ledger.committed)  # the key went to the secret, never into an item
    assert "PRIVATE KEY" in ca["secrets"][ORG]


@pytest.mark.parametrize("changes, reason", [({"enrollUsedAt": "x"}, "enrollment token already used"),
                                             ({"enrollExpiresAt": clock.iso(NOW - 1)}, "enrollment token expired")])
def test_a_spent_or_expired_token_is_refused_and_changes_nothing(monkeypatch, ca, denials, changes, reason):
    ctx, ledger = fake_ctx(None)
    _own_tx(monkeypatch, ledger)
    monkeypatch.setattr(store, "get_gateway", lambda gid: _gateway_item("gwe.t", **changes))
    with pytest.raises(Unauthorized):
        service.enroll(ctx, GW, "gwe.t", _csr())
    assert ledger.committed == [] and denials[0][2] == reason


def test_a_wrong_token_or_unknown_gateway_is_refused(monkeypatch, ca, denials):
    ctx, ledger = fake_ctx(None)
    monkeypatch.setattr(store, "get_gateway", lambda gid: _gateway_item("gwe.t"))
    with pytest.raises(Unauthorized):
        service.enroll(ctx, GW, "gwe.other", _csr())
    monkeypatch.setattr(store, "get_gateway", lambda gid: None)
    with pytest.raises(Unauthorized):
        service.enroll(ctx, GW, "gwe.t", _csr())
    assert ledger.committed == [] and len(denials) == 2


def test_a_bad_csr_is_400_audited_and_spends_nothing(monkeypatch, ca):
    ctx, ledger = fake_ctx(None)
    _own_tx(monkeypatch, ledger)
    monkeypatch.setattr(store, "get_gateway", lambda gid: _gateway_item("gwe.t"))
    with pytest.raises(ValidationError):
        service.enroll(ctx, GW, "gwe.t", _csr(cn="01OTHERGATEWAY00000000000000"))
    [only] = ledger.committed
    assert list(only) == [f"audit:gateway:{GW}:enroll-refused"] and "gateway" not in only


def test_renew_needs_the_gateways_own_certificate(monkeypatch, ca, denials):
    monkeypatch.setattr(store, "gateway_of_org", lambda org, gid: _gateway_item("gwe.t", enrolledAt="x"))
    ctx, _ = fake_ctx(principal(Scope.AGENT, agent_id="A1"))
    with pytest.raises(Unauthorized):
        service.renew(ctx, GW, _csr())
    other = GatewayPrincipal(org_id=ORG, key_id="cert:1", scope=Scope.AGENT, agent_id="A1", gateway_id="01OTHER",
                             serial="1")
    ctx, _ = fake_ctx(other)
    with pytest.raises(Forbidden):
        service.renew(ctx, GW, _csr())
    monkeypatch.setattr(store, "gateway_of_org", lambda org, gid: None)
    with pytest.raises(NotFound):
        service.renew(ctx, GW, _csr())


def test_renew_and_ws_token_with_the_certificate(monkeypatch, ca):
    me = GatewayPrincipal(org_id=ORG, key_id="cert:1", scope=Scope.AGENT, agent_id="A1", gateway_id=GW, serial="1")
    ctx, ledger = fake_ctx(me)
    _own_tx(monkeypatch, ledger)
    monkeypatch.setattr(store, "gateway_of_org", lambda org, gid: _gateway_item("gwe.t", enrolledAt="x"))
    out = service.renew(ctx, GW, _csr())
    assert_declared("POST", "/gateways/{gatewayId}/renew", out)
    assert ledger.names()[:2] == ["certificate", "gateway"]
    token = service.ws_token(ctx, GW)
    assert_declared("POST", "/gateways/{gatewayId}/ws-token", token)
    key_item = ledger.committed[-1]["key"].item
    assert token.token.startswith("cpw.") and "GSI1PK" not in key_item and key_item["agentId"] == "A1"
    assert key_item["expiresAt"] == token.expires_at == clock.iso(NOW + 300)


def test_revoke_is_idempotent_and_another_gateways_serial_is_404(monkeypatch):
    ctx, ledger = fake_ctx(principal())
    monkeypatch.setattr(service.fanout, "close_opened_with", lambda *a, **kw: 0)
    monkeypatch.setattr(store, "gateway_of_org", lambda org, gid: _gateway_item("gwe.t", certs={"ab": {}}))
    monkeypatch.setattr(store, "get_certificate", lambda s: {"orgId": ORG, "gatewayId": GW, "revokedAt": "x",
                                                             "wsKeys": {"k1"}})
    service.revoke(ctx, GW, "ab")
    assert ledger.names()[:2] == ["certificate", "gateway"]
    ledger.fail["certificate"] = 1
    service.revoke(ctx, GW, "ab")  # already revoked: fine
    monkeypatch.setattr(store, "get_certificate", lambda s: {"orgId": ORG, "gatewayId": "01OTHER", "revokedAt": "x"})
    ledger.fail["certificate"] = 1
    with pytest.raises(NotFound):
        service.revoke(ctx, GW, "ab")


# --- pure rules -------------------------------------------------------------------------------

def test_rules_and_certauth_write_serials_and_fingerprints_alike():
    assert rules.serial_text(0xABC) == certauth.serial_text(0xABC) == "abc"
    assert rules.fingerprint(b"x") == certauth.fingerprint(b"x")
    assert rules.SAN_URI == certauth.SAN_URI


def test_the_gateway_keeps_its_newest_ten_certificate_summaries():
    certs = {f"s{i}": {"notBefore": f"2026-01-{i + 1:02d}"} for i in range(12)}
    assert set(rules.kept(certs)) == {f"s{i}" for i in range(2, 12)}


def test_issue_sets_subject_and_san_and_only_client_auth():
    now = datetime.fromtimestamp(NOW, timezone.utc)
    key_pem, ca_pem = rules.new_ca(ORG, now)
    identity = rules.Identity(ORG, GW, "site")
    issued = rules.issue(rules.parse_csr(_csr(cn="site")), identity, ca_pem, key_pem, now, 30)
    cert = x509.load_pem_x509_certificate(issued.pem.encode())
    assert cert.subject.rfc4514_string() == f"CN={GW},OU=gateway,O={ORG}"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_a_serial_in_a_path_may_be_api_gateways_colon_form():
    assert rules.serial_from_path("0a:bc") == rules.serial_from_path("ABC") == "abc"
    assert rules.serial_from_path("xyz") is None and rules.serial_from_path("") is None


# --- the mutual-TLS truststore (service.sync_truststore on fake S3 and domain; moto + Stubber: tests/handlers) ---

def _ca_pem(org: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return rules.ca_certificate(org, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()).decode(),
                                datetime.fromtimestamp(NOW, timezone.utc))


def test_the_bundle_only_grows_and_tells_what_it_lacked():
    a, b = _ca_pem("A"), _ca_pem("B")
    bundle, missing = rules.truststore_bundle("", [a])
    assert missing == 1 and bundle == a
    grown, missing = rules.truststore_bundle(bundle, [b, a, b])
    assert missing == 1 and grown == a + b  # kept first, added once
    assert rules.truststore_bundle(grown, [a.replace("\n", "\r\n")]) == (grown, 0)  # line endings do not matter
    assert rules.truststore_bundle(grown, []) == (grown, 0)  # never drops one the table does not list


class FakeTruststore:
    """A versioned object and a domain naming a version; `between` runs after each pointing (another writer)."""

    def __init__(self, monkeypatch, cas: dict[str, str], domain: str | None = "gw.example.com") -> None:
        self.versions: list[tuple[str, str]] = []
        self.named: str | None = None
        self.pointed: list[str] = []
        self.between: list = []
        monkeypatch.setattr(adapters, "truststore_configured", lambda: True)
        monkeypatch.setattr(adapters, "truststore_latest", self.latest)
        monkeypatch.setattr(adapters, "write_truststore", self.write)
        monkeypatch.setattr(adapters, "mtls_domain", lambda: domain)
        monkeypatch.setattr(adapters, "domain_truststore", lambda name: self.state())
        monkeypatch.setattr(adapters, "point_domain", self.point)
        monkeypatch.setattr(store, "all_cas", lambda: [store.StoredCa(o, p) for o, p in cas.items()])

    def latest(self):
        from chalicelib.aws.blobs import Version

        if not self.versions:
            return None
        vid, text = self.versions[-1]
        return Version(text.encode(), f'"{vid}"', vid)

    def write(self, bundle: str, replacing):
        current = self.latest()
        if (current.etag if current else None) != (replacing.etag if replacing else None):
            return None
        self.versions.append((f"v{len(self.versions) + 1}", bundle))
        return self.latest()

    def state(self):
        from chalicelib.aws.domains import Truststore

        return Truststore(self.named, "AVAILABLE", ())

    def point(self, name: str, version: str):
        from chalicelib.aws.domains import Truststore

        self.named = version
        self.pointed.append(version)
        if self.between:
            self.between.pop(0)()
        return Truststore(version, "UPDATING", ())

    def text(self, version: str) -> str:
        return dict(self.versions)[version]


def test_sync_writes_the_missing_ca_and_points_the_domain_at_that_version(monkeypatch):
    a = _ca_pem("A")
    fake = FakeTruststore(monkeypatch, {"A": a})
    assert service.sync_truststore() == {"written": 1, "pointed": "v1", "state": "current", "version": "v1"}
    assert fake.pointed == ["v1"] and fake.text("v1") == a
    assert service.sync_truststore() == {"written": 0, "pointed": None, "state": "current", "version": "v1"}


def test_sync_points_again_when_another_writer_wrote_after_it_pointed(monkeypatch):
    """Writer 1 points at v2 {A,B}; meanwhile writer 2 wrote v3 {A,B,C}: writer 1 reads that after pointing and
    points at v3 (writer 2, reading the domain before, might otherwise leave v2 as the last word)."""
    a, b, c = _ca_pem("A"), _ca_pem("B"), _ca_pem("C")
    cas = {"A": a}
    fake = FakeTruststore(monkeypatch, cas)
    fake.versions.append(("v1", a))
    cas["B"] = b
    fake.between.append(lambda: fake.versions.append(("v3", a + b + c)))
    result = service.sync_truststore()
    assert fake.pointed == ["v2", "v3"] and result["pointed"] == "v3" and fake.named == "v3"
    assert all(pem in fake.text("v3") for pem in (a, b, c))


def test_sync_extends_what_another_writer_wrote_first(monkeypatch):
    a, b = _ca_pem("A"), _ca_pem("B")
    fake = FakeTruststore(monkeypatch, {"A": a})
    original = fake.write

    def raced(bundle, replacing):  # another writer's {B} lands between our read and our write
        if not fake.versions:
            fake.versions.append(("v1", b))
        return original(bundle, replacing)

    monkeypatch.setattr(adapters, "write_truststore", raced)
    result = service.sync_truststore(also=())
    assert fake.named == "v2" and result["written"] == 1 and fake.text("v2") == b + a


def test_sync_without_a_domain_writes_the_bundle_only(monkeypatch):
    fake = FakeTruststore(monkeypatch, {"A": _ca_pem("A")}, domain=None)
    assert service.sync_truststore()["state"] == "current" and fake.pointed == [] and len(fake.versions) == 1


def test_sync_gives_up_after_its_rounds_and_says_so(monkeypatch):
    a = _ca_pem("A")
    fake = FakeTruststore(monkeypatch, {"A": a})
    fake.versions.append(("v1", a))
    fake.between.extend(lambda n=n: fake.versions.append((f"w{n}", a)) for n in range(service.SYNC_ROUNDS))
    assert service.sync_truststore()["state"] == "unsettled" and len(fake.pointed) == service.SYNC_ROUNDS


def test_a_failing_domain_read_does_not_keep_the_ca_out_of_the_bundle(monkeypatch):
    a = _ca_pem("A")
    fake = FakeTruststore(monkeypatch, {"A": a})

    def denied(name):
        raise RuntimeError("AccessDenied")

    monkeypatch.setattr(adapters, "domain_truststore", denied)
    with pytest.raises(RuntimeError):
        service.sync_truststore()
    assert fake.text("v1") == a and fake.pointed == []
