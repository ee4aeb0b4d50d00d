from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope, bearer_token
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.gateways import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Gateways"


@endpoint(bp, "/gateways", "POST", scope=Scope.OPERATOR, body="CreateGatewayRequest", response="GatewayCreated",
          status=201, summary="Create a gateway and its one-time enrollment token (valid 1 h, shown once)", tag=TAG,
          errors=(404,))
def create_gateway(call: Call) -> models.GatewayCreated:
    return service.create(call.ctx, call.body)


@endpoint(bp, "/gateways", "GET", scope=Scope.OPERATOR, query="ListQuery", response="GatewayList",
          summary="List the organization's gateways: certificates (serial, validity, status) and last seen", tag=TAG)
def list_gateways(call: Call) -> models.GatewayList:
    return service.list_gateways(call.ctx, call.query)


@endpoint(bp, "/gateways/{gatewayId}", "GET", scope=Scope.OPERATOR, response="Gateway",
          summary="A gateway: its certificates and when each was last seen", tag=TAG, errors=(404,))
def get_gateway(call: Call) -> models.Gateway:
    return service.get(call.ctx, call.params["gatewayId"])


# No API key: the enrollment token is the credential (Authorization: Bearer <enrollmentToken>), checked
# by the service (401 audited), so the route itself is public to the pipeline.
@endpoint(bp, "/gateways/{gatewayId}/enroll", "POST", scope=None, body="CsrRequest", response="CertificateIssued",
          status=201, summary="Exchange the enrollment token and a CSR for the gateway's certificate", tag=TAG,
          errors=(401,), idempotency="locked")  # locked: the CA may be made first (Secrets Manager, its own commit)
def enroll_gateway(call: Call) -> models.CertificateIssued:
    return service.enroll(call.ctx, call.params["gatewayId"], bearer_token(call.headers), call.body.csr)


@endpoint(bp, "/gateways/{gatewayId}/renew", "POST", scope=Scope.AGENT, body="CsrRequest", response="CertificateIssued",
          status=201, summary="A new certificate, over mutual TLS with the current one", tag=TAG, errors=(404,),
          idempotency="locked")  # as enroll
def renew_gateway(call: Call) -> models.CertificateIssued:
    return service.renew(call.ctx, call.params["gatewayId"], call.body.csr)


@endpoint(bp, "/gateways/{gatewayId}/certificates/{serial}", "DELETE", scope=Scope.OPERATOR, status=204,
          response=None, summary="Revoke a certificate: refused from the next call on", tag=TAG, errors=(404,))
def revoke_certificate(call: Call) -> None:
    service.revoke(call.ctx, call.params["gatewayId"], call.params["serial"])


@endpoint(bp, "/gateways/{gatewayId}/ws-token", "POST", scope=Scope.AGENT, response="WsToken",
          summary="A short-lived token for /ws?token= (mutual TLS only; REST refuses the token)", tag=TAG,
          errors=(404,), idempotency="locked")  # its one commit could stage, but its caller is a certificate the
# staged-route sampler (tests/handlers/test_idempotency_staged.py) cannot present; a replay omits the token anyway
def ws_token(call: Call) -> models.WsToken:
    return service.ws_token(call.ctx, call.params["gatewayId"])
