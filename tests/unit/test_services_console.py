"""The console's service (no AWS, no request): where the page finds the API."""
from __future__ import annotations

import dataclasses

from chalicelib.console import service
from chalicelib.console.models import ConsoleConfig
from chalicelib.core import config


def test_locally_the_websocket_is_the_same_host_and_oidc_is_shown_null():
    result = service.config(service.Where("http", "localhost:8000", "/console/config.json"))
    assert isinstance(result, ConsoleConfig)
    assert result.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "restUrl": "http://localhost:8000", "wsUrl": "ws://localhost:8000/ws", "oidc": None}


def test_the_deployed_websocket_url_is_named_when_the_stack_set_it(monkeypatch):
    configured = dataclasses.replace(config.settings(), console_websocket_url="wss://w1.example/ws")
    monkeypatch.setattr(service, "settings", lambda: configured)
    assert service.config(service.Where("https", "r1.example", "/dev/console/config.json")).ws_url == "wss://w1.example/ws"
