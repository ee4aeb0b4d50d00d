"""Gateways, their certificates, the organization CAs and WebSocket tokens: DynamoDB items.

  PK GW#{gatewayId}, SK GW                   - the gateway (enroll finds it by id alone); its latest
                                               certificates as a map `certs` {serial: summary}
  GSI1PK ORG#{org}#GWS, GSI1SK gatewayId     - an organization's gateways, for GET /gateways
  PK GWCERT#{serial}, SK CERT                - a certificate: what core/certauth.py reads on every
                                               mutual-TLS call (org, gateway, agent, fingerprint, revokedAt)
  PK ORG#{org}#GWCA, SK CA                   - the organization's CA certificate (public; its key is in
                                               Secrets Manager, see adapters.py)
  GSI1PK GWCAS, GSI1SK orgId                 - every CA (the truststore bundle; the local TLS port's trust)
  PK KEY#{keyId}, SK KEY                     - a WebSocket token: a short-lived agent key (core/auth.py
                                               reads it at /ws), not listed by GET /keys, TTL'd

Key functions for the items core reads (certificate, gateway, CA) are core/certauth.py's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.certauth import ca_pk, cert_pk, gateway_pk
from chalicelib.core.config import settings

ALL_CAS = "GWCAS"


def _table() -> str:
    return settings().main_table


# --- gateways ---------------------------------------------------------------------------

def gateway_put(org_id: str, gateway_id: str, agent_id: str, name: str, token_hash: str, expires_at: str,
                created_at: str) -> dynamo.Put:
    return dynamo.Put(_table(), {
        **gateway_pk(gateway_id), "type": "gateway", "orgId": org_id, "gatewayId": gateway_id, "agentId": agent_id,
        "name": name, "createdAt": created_at, "enrollHash": token_hash, "enrollExpiresAt": expires_at,
        "certs": {}, "GSI1PK": f"ORG#{org_id}#GWS", "GSI1SK": gateway_id,
    }, condition="attribute_not_exists(PK)")


def get_gateway(gateway_id: str) -> dict[str, Any] | None:
    return dynamo.get(_table(), gateway_pk(gateway_id), consistent=True)


def gateway_of_org(org_id: str, gateway_id: str) -> dict[str, Any] | None:
    item = get_gateway(gateway_id)
    return item if item is not None and item["orgId"] == org_id else None


def consume_enrollment(gateway_id: str, token_hash: str, now_iso: str, serial: str, summary: dict[str, Any],
                       drop: list[str]) -> dynamo.Update:
    """The enrollment token is spent with the certificate it paid for: only if it is this token, unused, unexpired."""
    return dynamo.Update(
        _table(), gateway_pk(gateway_id),
        set={"enrollUsedAt": now_iso, "enrolledAt": now_iso, ("certs", serial): summary},  # type: ignore[dict-item]
        remove=[("certs", old) for old in drop],  # type: ignore[misc]  # map paths, as Update documents
        condition="enrollHash = :h AND attribute_not_exists(enrollUsedAt) AND enrollExpiresAt > :now",
        values={":h": token_hash, ":now": now_iso})


def add_certificate(org_id: str, gateway_id: str, serial: str, summary: dict[str, Any], drop: list[str]) -> dynamo.Update:
    return dynamo.Update(
        _table(), gateway_pk(gateway_id),
        set={("certs", serial): summary},  # type: ignore[dict-item]  # a map path
        remove=[("certs", old) for old in drop],  # type: ignore[misc]
        condition="orgId = :org AND attribute_exists(enrolledAt)", values={":org": org_id})


def mark_revoked(org_id: str, gateway_id: str, serial: str, at: str) -> dynamo.Update:
    """The gateway's summary of the certificate says revoked (if it is still listed there)."""
    return dynamo.Update(_table(), gateway_pk(gateway_id), set={("certs", serial, "revokedAt"): at},  # type: ignore[dict-item]
                         condition="orgId = :org AND attribute_exists(certs.#serial)",
                         names={"#serial": serial}, values={":org": org_id})


def list_gateways(org_id: str, limit: int, start_key: dict[str, Any] | None) -> dynamo.Page:
    return dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#GWS"}, index="GSI1",
                        limit=limit, start_key=start_key)


# --- certificates ---------------------------------------------------------------------------

def certificate_put(org_id: str, gateway_id: str, agent_id: str, serial: str, fingerprint: str, not_before: str,
                    not_after: str, issued_at: str) -> dynamo.Put:
    return dynamo.Put(_table(), {
        **cert_pk(serial), "type": "gatewayCert", "orgId": org_id, "gatewayId": gateway_id, "agentId": agent_id,
        "serial": serial, "fingerprint": fingerprint, "notBefore": not_before, "notAfter": not_after,
        "issuedAt": issued_at, "GSI1PK": f"ORG#{org_id}#GW#{gateway_id}#CERTS", "GSI1SK": serial,
    }, condition="attribute_not_exists(PK)")


def get_certificate(serial: str) -> dict[str, Any] | None:
    return dynamo.get(_table(), cert_pk(serial), consistent=True)


def get_certificates(serials: list[str]) -> list[dict[str, Any]]:
    return dynamo.batch_get(_table(), [cert_pk(s) for s in serials]) if serials else []


def revoke_certificate(org_id: str, gateway_id: str, serial: str, at: str) -> dynamo.Update:
    # The org and gateway conditions make another's certificate indistinguishable from a missing one.
    return dynamo.Update(_table(), cert_pk(serial), set={"revokedAt": at},
                         condition="attribute_exists(PK) AND orgId = :org AND gatewayId = :gw "
                                   "AND attribute_not_exists(revokedAt)",
                         values={":org": org_id, ":gw": gateway_id})


def remember_ws_key(serial: str, key_id: str) -> dynamo.Update:
    """The WebSocket tokens a certificate minted, so that revoking it closes their sockets."""
    return dynamo.Update(_table(), cert_pk(serial), add={"wsKeys": {key_id}},
                         condition="attribute_exists(PK) AND attribute_not_exists(revokedAt)")


def ws_key_put(item: dict[str, Any]) -> dynamo.Put:
    return dynamo.Put(_table(), item, condition="attribute_not_exists(PK)")


# --- the organization CAs ---------------------------------------------------------------------

@dataclass(frozen=True)
class StoredCa:
    org_id: str
    cert_pem: str


def get_ca(org_id: str) -> StoredCa | None:
    item = dynamo.get(_table(), ca_pk(org_id), consistent=True)
    return StoredCa(org_id, item["certPem"]) if item else None


def ca_put(org_id: str, cert_pem: str, created_at: str) -> dynamo.Put:
    return dynamo.Put(_table(), {**ca_pk(org_id), "type": "gatewayCa", "orgId": org_id, "certPem": cert_pem,
                                 "createdAt": created_at, "GSI1PK": ALL_CAS, "GSI1SK": org_id},
                      condition="attribute_not_exists(PK)")


def all_cas() -> list[StoredCa]:
    return [StoredCa(i["orgId"], i["certPem"]) for i in dynamo.query_all(_table(), "GSI1PK = :pk", {":pk": ALL_CAS},
                                                                          index="GSI1")]
