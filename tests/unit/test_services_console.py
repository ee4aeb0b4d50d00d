"""The console's service (no AWS, no request): where the page finds the API."""
from __future__ import annotations

import dataclasses

from chalicelib.console import service
from chalicelib.console.models import ConsoleConfig
from chalicelib.core import config


def test_locally_the_websocket_is_the_same_host_and_oidc_is_shown_null(monkeypatch):
    off = dataclasses.replace(config.settings(), oidc_issuer=None, oidc_audience=None)
    monkeypatch.setattr(service, "settings", lambda: off)
    result = service.config(service.Where("http", "localhost:8000", "/console/config.json"))
    assert isinstance(result, ConsoleConfig)
    assert result.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "restUrl": "http://localhost:8000", "wsUrl": "ws://localhost:8000/ws", "oidc": None}


def test_the_deployed_websocket_url_is_named_when_the_stack_set_it(monkeypatch):
    configured = dataclasses.replace(config.settings(), console_websocket_url="wss://w1.example/ws")
    monkeypatch.setattr(service, "settings", lambda: configured)
    assert service.config(service.Where("https", "r1.example", "/dev/console/config.json")).ws_url == "wss://w1.example/ws"


def test_oidc_names_the_pool_and_its_cognito_endpoint(monkeypatch):
    on = dataclasses.replace(config.settings(), oidc_issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X",
                             oidc_audience="client-1", region="eu-west-1", oidc_endpoint=None)
    monkeypatch.setattr(service, "settings", lambda: on)
    oidc = service.config(service.Where("https", "r1.example", "/dev/console/config.json")).oidc
    assert oidc is not None and oidc.model_dump(by_alias=True) == {
        "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X", "clientId": "client-1",
        "region": "eu-west-1", "endpoint": "https://cognito-idp.eu-west-1.amazonaws.com/"}
