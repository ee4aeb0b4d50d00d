"""AWS calls per request with a gateway certificate (mutual TLS) beside the same request with an API key.

Run: .venv/bin/python bench/cert_calls.py   (in-process moto; counts botocore calls, so no timing here)

The same agent-scope requests (GET /agents/{id}/commands, POST /ingest of one record) are made with the
agent's API key and with the gateway's certificate, the latter as API Gateway's mutual TLS hands it to
the function (`requestContext.identity.clientCert`, through devstack/tls.py's ClientCertGateway):

- cold: the first certificate call of a fresh function (the organization's CA not cached yet);
- warm: every later call (the CA cached; last seen written less than a minute ago);
- warm + last seen: the first call of a new minute (the one bookkeeping write a minute per certificate).

The goal is 0 calls more than an API key on a warm function: a key costs one GetItem (its item), a
certificate one GetItem (its item, strongly consistent so a revocation is seen by the next call).
"""
from __future__ import annotations

import json

from common import moto_stack, table


def main() -> None:
    from chalice.config import Config
    from chalice.test import Client
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from devstack.tls import ClientCertGateway, client_cert_structure

    with moto_stack() as (app_module, counter, root):
        from chalicelib.core import certauth, clock

        with Client(app_module.app) as client:
            def call(method, path, key=None, body=None, cert=None, expect=(200, 201)):
                headers = {"content-type": "application/json"}
                if key:
                    headers["authorization"] = f"Bearer {key}"
                data = json.dumps(body).encode() if body is not None else None
                with counter.counting():
                    if cert is None:
                        response = getattr(client.http, method)(path, headers=headers, body=data or b"")
                        status, raw = response.status_code, response.body
                    else:
                        answer = gateway.handle_request_with_cert(cert, method.upper(), path, headers, data)
                        status, raw = answer["statusCode"], answer.get("body") or b""
                assert status in expect, (path, status, raw)
                text = raw.decode() if isinstance(raw, bytes) else raw
                return (json.loads(text) if text else None), len(counter.calls), counter.summary()

            gateway = ClientCertGateway(app_module.app, Config())
            org = call("post", "/orgs", root["adminApiKey"], {"name": "bench"})[0]
            ops = call("post", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"})[0]["apiKey"]
            agent = call("post", "/agents", ops, {"name": "edge"})[0]
            created = call("post", "/gateways", ops, {"agentId": agent["agentId"], "name": "site"})[0]
            key = ec.generate_private_key(ec.SECP256R1())
            csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
            issued, enroll_calls, enroll_summary = call(
                "post", f"/gateways/{created['gatewayId']}/enroll", created["enrollmentToken"],
                {"csr": csr.public_bytes(serialization.Encoding.PEM).decode()})
            cert = client_cert_structure(x509.load_pem_x509_certificate(issued["certificatePem"].encode())
                                         .public_bytes(serialization.Encoding.DER))
            certauth.forget_cas()  # a fresh function: the CA is read once

            poll = f"/agents/{agent['agentId']}/commands?status=pending"
            n = {"i": 0}

            def ingest_body():
                n["i"] += 1
                return {"batchId": f"b{n['i']}", "records": [{"recordId": f"r{n['i']}", "table": "t", "data": {},
                                                             "ts": "2026-01-01T00:00:00Z"}]}

            rows = []
            _, cold, cold_summary = call("get", poll, cert=cert)
            rows.append(("GET commands, certificate, cold (first call)", cold, cold_summary))
            for label, method, path, body_of in (("GET /agents/{id}/commands", "get", poll, lambda: None),
                                                  ("POST /ingest (1 record)", "post", "/ingest", ingest_body)):
                _, with_key, key_summary = call(method, path, agent["apiKey"], body_of())
                _, with_cert, cert_summary = call(method, path, cert=cert, body=body_of())
                rows.append((f"{label}, API key", with_key, key_summary))
                rows.append((f"{label}, certificate (warm)", with_cert, cert_summary))
                rows.append(("  added by the certificate", with_cert - with_key, ""))
            real_now = clock.now
            clock.now = lambda: real_now() + 61  # type: ignore[assignment]  # the next minute
            try:
                _, minute, minute_summary = call("get", poll, cert=cert)
            finally:
                clock.now = real_now  # type: ignore[assignment]
            rows.append(("GET commands, certificate, first call of a new minute", minute, minute_summary))
            _, ws, ws_summary = call("post", f"/gateways/{created['gatewayId']}/ws-token", cert=cert)
            rows.append(("POST /gateways/{id}/ws-token (certificate)", ws, ws_summary))
            rows.append(("POST /gateways/{id}/enroll (first of the org: CA made)", enroll_calls, enroll_summary))
        print(table(rows, ("request", "AWS calls", "which")))


if __name__ == "__main__":
    main()
