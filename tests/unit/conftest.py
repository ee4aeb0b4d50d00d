"""The unit tier: rules and services with fakes. Nothing here may create an AWS (or moto) client.

A test that stands in for an outside service with botocore's Stubber puts its
own client into `clients._clients`; that one is handed out, nothing else is.
"""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch):
    from chalicelib.aws import clients

    stubbed = dict(clients._clients)  # whatever the session holds now is not the test's: hidden

    def refuse(service, endpoint_url=None):
        found = clients._clients.get((service, endpoint_url))
        if found is not None and stubbed.get((service, endpoint_url)) is not found:
            return found  # put there by this test (a Stubber)
        raise AssertionError("a unit test reached AWS: fake the store function instead")

    monkeypatch.setattr(clients, "client", refuse)


@pytest.fixture(autouse=True)
def _local_settings(monkeypatch):
    """Settings as a unit test expects them, whatever a handler module ran before in this process:
    its stack's environment names a Secrets Manager pepper, which would be an AWS call here."""
    from chalicelib.core import config

    monkeypatch.setenv("API_KEY_PEPPER", "unit-test-pepper")
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()
