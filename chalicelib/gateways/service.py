"""Gateways: creation with a one-time enrollment token, enrollment and renewal by CSR, revocation,
WebSocket tokens (issue 21; docs/SECURITY.md "Gateway certificates").

Every refusal here is audited and changes nothing: a bad token or CSR spends no token and
issues nothing; an enrollment commits the spent token and the new certificate together.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timezone
from typing import Any

from chalicelib.agents import service as agents_service
from chalicelib.core import audit, ids
from chalicelib.core.auth import Scope, new_key
from chalicelib.core.certauth import WS_TOKEN_PREFIX, GatewayPrincipal
from chalicelib.core.config import settings
from chalicelib.core.context import Ctx
from chalicelib.core.errors import Forbidden, NotFound, Unauthorized, Unavailable, ValidationError
from chalicelib.core.paging import next_token, start_key
from chalicelib.core.tx import Tx, TxFailed
from chalicelib.fanout import fanout
from chalicelib.gateways import adapters, models, rules, store

log = logging.getLogger(__name__)

ENROLLMENT_SECONDS = 3600
# What an unknown gateway's token is compared against: as long as a real hash, matching none.
DUMMY_HASH = "0" * 64


def _token_hash(token: str) -> str:
    return hmac.new(settings().api_key_pepper.encode(), b"gateway-enrollment:" + token.encode(),
                    hashlib.sha256).hexdigest()


def _now(ctx: Ctx) -> datetime:
    return datetime.fromtimestamp(ctx.now(), timezone.utc)


def _in_org(ctx: Ctx, org_id: str) -> Ctx:
    return Ctx(principal=ctx.principal, trace_id=ctx.trace_id, system_org_id=org_id, unit_of_work=ctx.unit_of_work)


def _audit_alone(ctx: Ctx, org_id: str, entity_id: str, action: str, details: dict[str, Any]) -> None:
    """An audit event committed on its own (a refusal: nothing else is written), never staged."""
    tx = Tx(Ctx(principal=ctx.principal, trace_id=ctx.trace_id, system_org_id=org_id))
    tx.audit("gateway", entity_id, action, details)
    try:
        tx.commit()
    except Exception:  # noqa: BLE001 - the refusal stands; the lost event is logged loudly
        log.exception("AUDIT WRITE FAILED: %s", {"orgId": org_id, "gatewayId": entity_id, "action": action, **details})


# --- creation ---------------------------------------------------------------------------------

def create(ctx: Ctx, command: models.CreateGatewayRequest) -> models.GatewayCreated:
    gateway_id = ids.new_id()
    token = rules.enrollment_token()
    now = ctx.now()
    created, expires = ctx.iso(now), ctx.iso(now + ENROLLMENT_SECONDS)
    tx = ctx.tx()
    agents_service.require_exists(tx, ctx.org_id, command.agent_id)
    tx.put("gateway", store.gateway_put(ctx.org_id, gateway_id, command.agent_id, command.name, _token_hash(token),
                                        expires, created))
    tx.audit("gateway", gateway_id, "created", {"agentId": command.agent_id, "name": command.name})
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name == "agent":
            raise NotFound(f"no agent {command.agent_id}", [{"field": "agentId", "message": "no such agent"}]) from None
        raise
    return models.GatewayCreated(gateway_id=gateway_id, agent_id=command.agent_id, name=command.name,
                                 enrollment_token=token, enrollment_expires_at=expires, created_at=created)


# --- the organization's CA -----------------------------------------------------------------------

def ensure_ca(ctx: Ctx, org_id: str) -> tuple[str, str]:
    """The organization's CA (certificate PEM, key PEM), made on first need: the key in Secrets Manager
    first (a concurrent maker's key wins), then the public certificate item (likewise)."""
    stored = store.get_ca(org_id)
    key = adapters.ca_key(org_id)
    if stored is not None and key is not None:
        return stored.cert_pem, key
    if stored is not None:  # a certificate whose key is gone: issuing with a new key would break every chain
        log.error("gateway CA of %s: the certificate item exists but its key secret does not", org_id)
        raise Unavailable("the organization's gateway CA key is unavailable")
    now = _now(ctx)
    if key is None:
        fresh, _ = rules.new_ca(org_id, now)
        key = fresh if adapters.create_ca_key(org_id, fresh) else adapters.ca_key(org_id)
        if key is None:
            raise Unavailable("the organization's gateway CA key could not be read back; retry")
    cert_pem = rules.ca_certificate(org_id, key, now)
    tx = Tx(Ctx(principal=ctx.principal, trace_id=ctx.trace_id, system_org_id=org_id))
    tx.put("ca", store.ca_put(org_id, cert_pem, ctx.iso()))
    tx.audit("gatewayCa", org_id, "created")
    try:
        tx.commit()
    except TxFailed:
        again = store.get_ca(org_id)
        assert again is not None
        return again.cert_pem, key
    try:
        sync_truststore(also=(cert_pem,))
    except Exception:  # noqa: BLE001 - the CA stands; the truststore_sync schedule finishes the job (docs/DEPLOY.md)
        log.exception("the mTLS truststore was not brought up to date; the truststore_sync schedule retries")
    return cert_pem, key


# --- the mutual-TLS truststore ------------------------------------------------------------------

SYNC_ROUNDS = 6


def sync_truststore(also: tuple[str, ...] = ()) -> dict[str, Any]:
    """Bring the truststore bundle and the mutual-TLS domain up to every organization's CA.

    Each round reads the latest version of the bundle. If it lacks a CA the table lists (or `also`: a CA
    just made, which the index may not show yet), a bundle of its certificates plus the missing ones is
    written with If-Match on that version, and the round repeats: concurrent writers each extend the
    latest, so a bundle only grows and a later version holds every CA an earlier one did. Once the
    latest version holds every CA, the domain is pointed at it (unless it names it already) and the
    latest is read again: a version written meanwhile by another writer is pointed at in turn. The
    domain is only ever pointed at a version just read and checked to hold every CA; and whoever points
    last has read, after pointing, that no newer version exists. What is not done within SYNC_ROUNDS
    (API Gateway busy for long, a stream of writers) is left to the truststore_sync schedule.
    """
    if not adapters.truststore_configured():
        return {"state": "off"}
    result: dict[str, Any] = {"written": 0, "pointed": None}
    wanted = [ca.cert_pem for ca in store.all_cas()] + list(also)
    domain = adapters.mtls_domain()
    named: str | None = None
    asked = False  # GetDomainName only once the bundle is written: a failure there must not keep a CA out of S3
    for _ in range(SYNC_ROUNDS):
        latest = adapters.truststore_latest()
        if latest is None and not wanted:
            return {**result, "state": "empty"}
        bundle, missing = rules.truststore_bundle(latest.data.decode() if latest else "", wanted)
        if missing or latest is None:
            if adapters.write_truststore(bundle, latest) is not None:
                result["written"] += 1
            continue  # written, or another writer extended it first: read it again
        if domain and not asked:
            named, asked = adapters.domain_truststore(domain).version, True
        if not domain or named == latest.version_id:
            return {**result, "state": "current", "version": latest.version_id}
        if latest.version_id is None:
            log.error("the truststore bucket is not versioned: the mTLS domain cannot name a version")
            return {**result, "state": "unversioned"}
        answer = adapters.point_domain(domain, latest.version_id)
        named = result["pointed"] = latest.version_id
        if answer.warnings:
            log.warning("API Gateway's truststore warnings for %s (version %s): %s", domain, latest.version_id,
                        list(answer.warnings))
        log.info("mTLS domain %s now trusts truststore version %s", domain, latest.version_id)
    log.warning("the mTLS truststore did not settle in %d rounds; the truststore_sync schedule goes on", SYNC_ROUNDS)
    return {**result, "state": "unsettled"}


# --- enrollment and renewal ---------------------------------------------------------------

def _checked_csr(ctx: Ctx, org_id: str, identity: rules.Identity, pem: str, action: str) -> Any:
    try:
        csr = rules.parse_csr(pem)
        rules.check_names(csr, identity)
    except rules.BadCsr as bad:
        _audit_alone(ctx, org_id, identity.gateway_id, f"{action}-refused", {"reason": f"csr: {bad.message}"})
        raise ValidationError.field("csr", bad.message) from None
    return csr


def _summary(issued: rules.Issued) -> dict[str, Any]:
    return {"notBefore": issued.not_before, "notAfter": issued.not_after}


def _dropped(gateway: dict[str, Any], serial: str, summary: dict[str, Any]) -> list[str]:
    certs = {**gateway.get("certs", {}), serial: summary}
    return [s for s in certs if s not in rules.kept(certs)]


def _issued(issued: rules.Issued, ca_pem: str) -> models.CertificateIssued:
    return models.CertificateIssued(certificate_pem=issued.pem, chain_pem=ca_pem, serial=issued.serial,
                                    not_before=issued.not_before, not_after=issued.not_after)


def enroll(ctx: Ctx, gateway_id: str, token: str | None, csr_pem: str) -> models.CertificateIssued:
    """Exchange the one-time enrollment token and a CSR for the gateway's first certificate."""
    path = f"/gateways/{gateway_id}/enroll"
    gateway = store.get_gateway(gateway_id) if token else None
    presented = _token_hash(token) if token else ""
    stored = (gateway or {}).get("enrollHash") or DUMMY_HASH
    org_id = gateway["orgId"] if gateway else None
    actor = f"gateway:{gateway_id}"
    if not (hmac.compare_digest(stored, presented or DUMMY_HASH[:-1] + "1") and gateway is not None):
        audit.record_denial(org_id, actor, "unknown gateway or wrong enrollment token", "POST", path, ctx.trace_id)
        raise Unauthorized("unknown gateway or wrong enrollment token: send Authorization: Bearer <enrollmentToken>")
    assert org_id is not None
    if gateway.get("enrollUsedAt"):
        audit.record_denial(org_id, actor, "enrollment token already used", "POST", path, ctx.trace_id)
        raise Unauthorized("this enrollment token was used already: create a new gateway, or renew over mutual TLS")
    if gateway["enrollExpiresAt"] <= ctx.iso():
        audit.record_denial(org_id, actor, "enrollment token expired", "POST", path, ctx.trace_id)
        raise Unauthorized("this enrollment token expired (valid 1 h): create a new gateway")
    identity = rules.Identity(org_id, gateway_id, gateway["name"])
    csr = _checked_csr(ctx, org_id, identity, csr_pem, "enroll")
    ca_pem, ca_key = ensure_ca(ctx, org_id)
    issued = rules.issue(csr, identity, ca_pem, ca_key, _now(ctx), settings().gateway_cert_days)
    summary = _summary(issued)
    in_org = _in_org(ctx, org_id)
    tx = in_org.tx()
    tx.update("gateway", store.consume_enrollment(gateway_id, presented, ctx.iso(), issued.serial, summary,
                                                  _dropped(gateway, issued.serial, summary)))
    tx.put("certificate", store.certificate_put(org_id, gateway_id, gateway["agentId"], issued.serial,
                                                issued.fingerprint, issued.not_before, issued.not_after, ctx.iso()))
    tx.audit("gateway", gateway_id, "enrolled", {"serial": issued.serial, "notAfter": issued.not_after})
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name == "gateway":  # spent by a concurrent enrollment a moment ago
            audit.record_denial(org_id, actor, "enrollment token already used", "POST", path, ctx.trace_id)
            raise Unauthorized("this enrollment token was used already") from None
        raise
    return _issued(issued, ca_pem)


def _gateway_principal(ctx: Ctx, gateway_id: str, action: str) -> tuple[GatewayPrincipal, dict[str, Any]]:
    """The calling gateway (mutual TLS) and its item: 401 without a certificate, 404/403 for another gateway."""
    principal = ctx.principal
    if not isinstance(principal, GatewayPrincipal):
        org_id = principal.org_id if principal is not None else None
        audit.record_denial(org_id, principal.actor if principal else "anonymous",
                            f"{action} needs the gateway's client certificate", "POST",
                            f"/gateways/{gateway_id}/{action}", ctx.trace_id)
        raise Unauthorized(f"{action} needs the gateway's client certificate (mutual TLS), not an API key")
    gateway = store.gateway_of_org(principal.org_id, gateway_id)
    if gateway is None:
        raise NotFound(f"no gateway {gateway_id}")
    if principal.gateway_id != gateway_id:
        raise Forbidden("a gateway's certificate acts for its own gateway only")
    return principal, gateway


def renew(ctx: Ctx, gateway_id: str, csr_pem: str) -> models.CertificateIssued:
    """A new certificate for a new (or the same) key, over mutual TLS with the current one."""
    principal, gateway = _gateway_principal(ctx, gateway_id, "renew")
    org_id = principal.org_id
    identity = rules.Identity(org_id, gateway_id, gateway["name"])
    csr = _checked_csr(ctx, org_id, identity, csr_pem, "renew")
    ca_pem, ca_key = ensure_ca(ctx, org_id)
    issued = rules.issue(csr, identity, ca_pem, ca_key, _now(ctx), settings().gateway_cert_days)
    summary = _summary(issued)
    tx = ctx.tx()
    tx.put("certificate", store.certificate_put(org_id, gateway_id, gateway["agentId"], issued.serial,
                                                issued.fingerprint, issued.not_before, issued.not_after, ctx.iso()))
    tx.update("gateway", store.add_certificate(org_id, gateway_id, issued.serial, summary,
                                               _dropped(gateway, issued.serial, summary)))
    tx.audit("gateway", gateway_id, "renewed", {"serial": issued.serial, "previous": principal.serial,
                                                "notAfter": issued.not_after})
    tx.commit()
    return _issued(issued, ca_pem)


# --- revocation -------------------------------------------------------------------------------

def revoke(ctx: Ctx, gateway_id: str, serial: str) -> None:
    """Refused from the next call on (core/certauth.py reads the certificate item, strongly consistent,
    on every call); the WebSocket tokens it minted stop opening sockets and their open sockets close."""
    gateway = store.gateway_of_org(ctx.org_id, gateway_id)
    if gateway is None:
        raise NotFound(f"no gateway {gateway_id}")
    named = serial
    serial = rules.serial_from_path(serial) or ""
    if not serial:
        raise NotFound(f"no certificate {named[:80]} of gateway {gateway_id}")
    at = ctx.iso()
    tx = ctx.tx()
    tx.update("certificate", store.revoke_certificate(ctx.org_id, gateway_id, serial, at))
    if serial in gateway.get("certs", {}):
        tx.update("gateway", store.mark_revoked(ctx.org_id, gateway_id, serial, at))
    tx.audit("gateway", gateway_id, "certificate-revoked", {"serial": serial})
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name != "certificate":
            raise
        found = store.get_certificate(serial)
        if not (found and found["orgId"] == ctx.org_id and found["gatewayId"] == gateway_id and found.get("revokedAt")):
            raise NotFound(f"no certificate {serial} of gateway {gateway_id}") from None
        # already revoked: DELETE is idempotent (and closes what may still be open)
    found = store.get_certificate(serial) or {}
    for key_id in sorted(found.get("wsKeys") or ()):
        fanout.close_opened_with(ctx.org_id, key_id=key_id)


# --- WebSocket tokens -------------------------------------------------------------------------

def ws_token(ctx: Ctx, gateway_id: str) -> models.WsToken:
    """A short-lived agent key for /ws?token= (API Gateway's WebSocket API has no mutual TLS).

    Its text starts with `cpw.`, which is bound into its hash: REST refuses it (core/certauth.py),
    the WebSocket accepts it until it expires. Not listed by GET /keys; TTL'd an hour after expiry.
    """
    principal, gateway = _gateway_principal(ctx, gateway_id, "ws-token")
    now = ctx.now()
    expires = ctx.iso(now + settings().gateway_ws_token_seconds)
    token = f"{WS_TOKEN_PREFIX}{ids.new_id()}.{secrets.token_urlsafe(32)}"
    _, item = new_key(principal.org_id, Scope.AGENT, f"WebSocket token of gateway {gateway_id}",
                      agent_id=gateway["agentId"], expires_at=expires, api_key=token)
    for listed in ("GSI1PK", "GSI1SK"):
        item.pop(listed, None)
    item.update(type="wsToken", gatewayId=gateway_id, certSerial=principal.serial,
                ttl=int(now + settings().gateway_ws_token_seconds + 3600))
    tx = ctx.tx()
    tx.put("key", store.ws_key_put(item))
    tx.update("certificate", store.remember_ws_key(principal.serial, item["keyId"]))
    tx.audit("gateway", gateway_id, "ws-token-minted", {"serial": principal.serial, "expiresAt": expires})
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name == "certificate":  # revoked between the call's check and now
            raise Unauthorized("revoked client certificate") from None
        raise
    return models.WsToken(token=token, expires_at=expires)


# --- reads ------------------------------------------------------------------------------------

def _gateway(item: dict[str, Any], now_iso: str, last_seen: dict[str, str] | None = None) -> models.Gateway:
    certs = rules.kept(item.get("certs") or {})
    seen = dict(last_seen or {})
    if item.get("lastSeenSerial") and item["lastSeenSerial"] not in seen:
        seen[item["lastSeenSerial"]] = item["lastSeenAt"]
    return models.Gateway(
        gateway_id=item["gatewayId"], agent_id=item["agentId"], name=item["name"],
        status="enrolled" if item.get("enrolledAt") else "pending", created_at=item["createdAt"],
        enrollment_expires_at=item["enrollExpiresAt"], enrolled_at=item.get("enrolledAt"),
        last_seen_at=item.get("lastSeenAt"),
        certificates=[models.CertificateInfo(serial=serial, not_before=c["notBefore"], not_after=c["notAfter"],
                                             status=rules.certificate_status(c, now_iso),  # type: ignore[arg-type]
                                             revoked_at=c.get("revokedAt"), last_seen_at=seen.get(serial))
                      for serial, c in certs.items()])


def get(ctx: Ctx, gateway_id: str) -> models.Gateway:
    item = store.gateway_of_org(ctx.org_id, gateway_id)
    if item is None:
        raise NotFound(f"no gateway {gateway_id}")
    ctx.require_agent(item["agentId"])
    certs = store.get_certificates(list(rules.kept(item.get("certs") or {})))
    seen = {c["serial"]: c["lastSeenAt"] for c in certs if c.get("lastSeenAt")}
    return _gateway(item, ctx.iso(), seen)


def list_gateways(ctx: Ctx, query: models.ListQuery) -> models.GatewayList:
    scope = f"gateways:{ctx.org_id}"
    page = store.list_gateways(ctx.org_id, query.limit, start_key(query.next_token, scope))
    now = ctx.iso()
    return models.GatewayList(items=[_gateway(i, now) for i in page.items],
                              next_token=next_token(page.last_key, scope))
