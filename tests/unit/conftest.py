"""The unit tier: rules and services with fakes. Nothing here may reach AWS (or moto)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch):
    from chalicelib.aws import clients

    def refuse(*args, **kwargs):
        raise AssertionError("a unit test reached AWS: fake the store function instead")

    monkeypatch.setattr(clients, "client", refuse)
