"""The mutual-TLS truststore follows every new organization CA (docs/DEPLOY.md "Turning mutual TLS on").

S3 (the versioned truststore bucket) and DynamoDB are moto. API Gateway is not: moto has no
mutualTlsAuthentication on custom domains and no UpdateDomainName, so its calls are answered by
botocore's Stubber (in order, with the exact parameters checked) or, where two writers run at once,
by a small stateful fake of the domain hooked where the Stubber hooks (botocore's before-call).
"""
from __future__ import annotations

import json
import logging
import threading
import traceback

import pytest
from botocore.stub import ANY, Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

DOMAIN = "gw.example.com"


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM).decode()


def _domain(version: str | None, warnings: list[str] | None = None, status: str = "AVAILABLE") -> dict:
    mtls = {"truststoreUri": "s3://bucket/truststore.pem", **({"truststoreVersion": version} if version else {}),
            **({"truststoreWarnings": warnings} if warnings else {})}
    return {"domainName": DOMAIN, "domainNameStatus": status, "mutualTlsAuthentication": mtls}


def _update(version=ANY) -> dict:
    return {"domainName": DOMAIN, "patchOperations": [
        {"op": "replace", "path": "/mutualTlsAuthentication/truststoreVersion", "value": version}]}


def _first_enrollment(http, fleet) -> dict:
    """A new organization's first gateway enrolls: its CA is made."""
    agent_id, _ = fleet.register("edge")
    gateway = http.post("/gateways", fleet.operator, {"agentId": agent_id, "name": "site"}).json
    r = http.post(f"/gateways/{gateway['gatewayId']}/enroll", gateway["enrollmentToken"], {"csr": _csr()})
    assert r.status == 201, r.json
    return r.json


def _latest() -> tuple[str | None, str]:
    """(version id, content) of truststore.pem's latest version."""
    from chalicelib.aws import clients
    from chalicelib.core.config import settings

    s3 = clients.client("s3")
    try:
        got = s3.get_object(Bucket=settings().truststore_bucket, Key="truststore.pem")
    except s3.exceptions.NoSuchKey:
        return None, ""
    return got["VersionId"], got["Body"].read().decode()


def _version(version_id: str) -> str:
    from chalicelib.aws import clients
    from chalicelib.core.config import settings

    return clients.client("s3").get_object(Bucket=settings().truststore_bucket, Key="truststore.pem",
                                           VersionId=version_id)["Body"].read().decode()


class Calls:
    """Every API Gateway operation the shared client is asked for, with its parameters (none may slip by
    unseen: the enrollment swallows a failed truststore update)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict]] = []

    def __call__(self, params, model, **_):
        self.seen.append((model.name, dict(params)))

    def pointed(self) -> list[str]:
        return [p["patchOperations"][0]["value"] for name, p in self.seen if name == "UpdateDomainName"]


@pytest.fixture
def apigateway(app_module, monkeypatch, caplog):
    """The app's API Gateway client, every call recorded; backoff waits of zero (no sleeps in tests)."""
    from chalicelib.aws import clients, domains
    from chalicelib.core import observability

    _ = observability.logger  # built now, so that its set-up does not drop caplog's handler (tests/conftest.py)
    if caplog.handler not in logging.getLogger("chalicelib").handlers:
        logging.getLogger("chalicelib").addHandler(caplog.handler)

    monkeypatch.setattr(domains, "RETRY_DELAYS", (0.0, 0.0, 0.0))
    client = clients.client("apigateway")
    calls = Calls()
    client.meta.events.register("provide-client-params.api-gateway", calls)
    yield client, calls
    client.meta.events.unregister("provide-client-params.api-gateway", calls)


@pytest.fixture
def configured(monkeypatch):
    """The app stack deployed with MtlsDomainName: the functions have MTLS_DOMAIN_NAME."""
    from chalicelib.core import config

    monkeypatch.setenv("MTLS_DOMAIN_NAME", DOMAIN)
    config.settings.cache_clear()
    yield DOMAIN
    monkeypatch.delenv("MTLS_DOMAIN_NAME")
    config.settings.cache_clear()


@pytest.fixture
def stubbed(apigateway, configured):
    client, calls = apigateway
    with Stubber(client) as stubber:
        yield stubber, calls
        stubber.assert_no_pending_responses()


def _schedule(app_module):
    return app_module.truststore_sync({"version": "0", "account": "123456789012", "region": "us-east-1", "detail": {},
                                       "detail-type": "Scheduled Event", "source": "aws.events",
                                       "time": "2026-01-01T00:00:00Z", "id": "1", "resources": []}, None)


# --- a new CA -------------------------------------------------------------------------------------

def test_a_new_ca_points_the_domain_at_the_version_s3_returned(http, fleet, stubbed, caplog):
    stubber, calls = stubbed
    stubber.add_response("get_domain_name", _domain("an-older-version"), {"domainName": DOMAIN})
    stubber.add_response("update_domain_name", _domain(None, ["CA 3 of the bundle: unsupported key"], "UPDATING"),
                         _update())
    with caplog.at_level(logging.INFO, logger="chalicelib"):
        issued = _first_enrollment(http, fleet)

    version, bundle = _latest()
    assert calls.pointed() == [version]  # the VersionId S3 answered for the bundle written
    assert issued["chainPem"] in bundle and "PRIVATE" not in bundle
    assert [name for name, _ in calls.seen] == ["GetDomainName", "UpdateDomainName"]
    warned = [r for r in caplog.records if "truststore warnings" in r.getMessage()]
    assert warned and "unsupported key" in warned[0].getMessage() and warned[0].levelno == logging.WARNING


def test_a_busy_domain_is_retried_with_backoff_then_pointed(http, fleet, stubbed):
    stubber, calls = stubbed
    stubber.add_response("get_domain_name", _domain("an-older-version"), {"domainName": DOMAIN})
    stubber.add_client_error("update_domain_name", "ConflictException", "update in progress", 409,
                             expected_params=_update())
    stubber.add_client_error("update_domain_name", "TooManyRequestsException", "slow down", 429,
                             expected_params=_update())
    stubber.add_response("update_domain_name", _domain(None, status="UPDATING"), _update())
    issued = _first_enrollment(http, fleet)

    version, bundle = _latest()
    assert calls.pointed() == [version] * 3 and issued["chainPem"] in bundle


def test_a_domain_busy_past_the_bound_is_left_to_the_schedule(http, fleet, stubbed, app_module, caplog):
    """The enrollment succeeds (the CA stands, the bundle holds it); the update's failure is logged, and the
    truststore_sync schedule points the domain on its next run."""
    stubber, calls = stubbed
    stubber.add_response("get_domain_name", _domain("an-older-version"), {"domainName": DOMAIN})
    for _ in range(4):  # the first attempt and RETRY_DELAYS' three retries
        stubber.add_client_error("update_domain_name", "ConflictException", "update in progress", 409,
                                 expected_params=_update())
    issued = _first_enrollment(http, fleet)
    assert any("truststore_sync schedule retries" in r.getMessage() for r in caplog.records)
    stubber.assert_no_pending_responses()

    version, bundle = _latest()
    assert issued["chainPem"] in bundle
    stubber.add_response("get_domain_name", _domain("an-older-version"), {"domainName": DOMAIN})
    stubber.add_response("update_domain_name", _domain(None, status="UPDATING"), _update(version))
    result = _schedule(app_module)
    assert result["state"] == "current" and result["pointed"] == version and result["written"] == 0

    stubber.add_response("get_domain_name", _domain(version), {"domainName": DOMAIN})
    assert _schedule(app_module) == {"written": 0, "pointed": None, "state": "current", "version": version}


def test_the_schedule_restores_a_ca_missing_from_the_bundle(http, fleet, stubbed, app_module):
    """A bundle written without a CA the table lists (an older writer, a hand edit) is extended, and the domain
    pointed at the extended version."""
    from chalicelib.aws import clients
    from chalicelib.core.config import settings
    from chalicelib.gateways import store

    stubber, _ = stubbed
    stubber.add_response("get_domain_name", _domain("an-older-version"), {"domainName": DOMAIN})
    stubber.add_response("update_domain_name", _domain(None, status="UPDATING"), _update())
    issued = _first_enrollment(http, fleet)
    before, _ = _latest()
    clients.client("s3").put_object(Bucket=settings().truststore_bucket, Key="truststore.pem", Body=b"")  # all lost

    stubber.add_response("get_domain_name", _domain(before), {"domainName": DOMAIN})
    stubber.add_response("update_domain_name", _domain(None, status="UPDATING"), _update())
    result = _schedule(app_module)
    version, bundle = _latest()
    assert result["written"] == 1 and result["pointed"] == version != before
    assert issued["chainPem"] in bundle and all(ca.cert_pem in bundle for ca in store.all_cas())


# --- two organizations' CAs at once ----------------------------------------------------------------

class FakeDomain:
    """API Gateway's custom domain as its API describes it, for concurrent callers: GetDomainName answers the
    version it names; UpdateDomainName names another and answers ConflictException while the previous update
    is being applied (here: until two further calls have been made, standing for UPDATING)."""

    def __init__(self, version: str | None) -> None:
        self.version = version
        self.history: list[str] = []
        self.updating = 0
        self.lock = threading.Lock()

    def __call__(self, model, params, **_):
        from botocore.awsrequest import AWSResponse

        with self.lock:
            self.updating = max(0, self.updating - 1)
            if model.name == "GetDomainName":
                return AWSResponse("", 200, {}, None), _domain(self.version)
            assert model.name == "UpdateDomainName", model.name
            if self.updating:
                error = {"Error": {"Code": "ConflictException", "Message": "update in progress"},
                         "ResponseMetadata": {"HTTPStatusCode": 409}}
                return AWSResponse("", 409, {}, None), error
            self.version = json.loads(params["body"])["patchOperations"][0]["value"]  # the request as sent
            self.history.append(self.version)
            self.updating = 2
            return AWSResponse("", 200, {}, None), _domain(self.version, status="UPDATING")


def test_two_organizations_cas_made_at_once_leave_the_domain_on_a_version_holding_both(
        http, root, apigateway, configured, atomic_aws, monkeypatch):
    """Real concurrency: two organizations' first CAs, each writer held until both have read the same bundle
    (so each builds one from the CAs it saw and one If-Match write loses), then both point the domain.
    `atomic_aws`: one AWS request at a time, as the real services are atomic per request (in-process moto
    is not); the threads interleave between requests, where the truststore races live."""
    from chalicelib.aws import clients, domains
    from chalicelib.core.config import settings
    from chalicelib.core.context import Ctx
    from chalicelib.gateways import adapters, service, store

    monkeypatch.setattr(domains, "RETRY_DELAYS", (0.0,) * 20)
    client, _ = apigateway
    before, _ = _latest()
    seen_before = {v["VersionId"] for v in clients.client("s3").list_object_versions(
        Bucket=settings().truststore_bucket, Prefix="truststore.pem").get("Versions", [])}
    fake = FakeDomain(before)
    client.meta.events.register_first("before-call.api-gateway", fake)
    orgs = [http.post("/orgs", root["adminApiKey"], {"name": f"concurrent {i}"}).json["orgId"] for i in range(2)]
    both_read = threading.Barrier(2, timeout=20)
    held: set[int] = set()

    attempts: list[int] = []
    real_write = adapters.write_truststore

    def write_once_both_have_read(bundle, replacing):
        me = threading.get_ident()
        if me not in held:  # each writer's first write waits (outside any AWS call) until both have read
            held.add(me)
            both_read.wait()
        return real_write(bundle, replacing)

    def count_writes(params, **_):
        if params.get("Key") == "truststore.pem":
            attempts.append(threading.get_ident())

    monkeypatch.setattr(adapters, "write_truststore", write_once_both_have_read)
    s3 = clients.client("s3")
    s3.meta.events.register("provide-client-params.s3.PutObject", count_writes)
    made: dict[str, str] = {}
    errors: list[BaseException] = []

    def make(org_id: str) -> None:
        try:
            made[org_id], _ = service.ensure_ca(Ctx.system(org_id), org_id)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    try:
        threads = [threading.Thread(target=make, args=(org_id,)) for org_id in orgs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        s3.meta.events.unregister("provide-client-params.s3.PutObject", count_writes)
        client.meta.events.unregister("before-call.api-gateway", fake)
    assert not errors, "".join(traceback.format_exception(errors[0]))
    assert len(made) == 2 and len(held) == 2
    written = [v for v in clients.client("s3").list_object_versions(
        Bucket=settings().truststore_bucket, Prefix="truststore.pem")["Versions"] if v["VersionId"] not in seen_before]
    assert len(attempts) - len(written) >= 1  # both extended the same version: one If-Match write was refused

    version, bundle = _latest()
    assert fake.version == version  # the domain ends on the latest version...
    assert all(pem in bundle for pem in made.values())  # ...which holds both new CAs
    assert all(ca.cert_pem in _version(version) for ca in store.all_cas())  # and every CA the table lists
    assert fake.history[-1] == version
    for pointed in fake.history:  # every version it named held at least one of the two
        assert any(pem in _version(pointed) for pem in made.values())


# --- nothing configured ------------------------------------------------------------------------

def test_without_a_domain_the_bundle_is_written_and_api_gateway_never_called(http, fleet, apigateway, app_module):
    client, calls = apigateway
    with Stubber(client):  # no response queued: any call would fail (and be swallowed): `calls` sees it
        issued = _first_enrollment(http, fleet)
        assert _schedule(app_module) == {"state": "off"}
    assert calls.seen == []
    _, bundle = _latest()
    assert issued["chainPem"] in bundle
