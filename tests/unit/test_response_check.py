"""core/response_check.py: a body that is not its route's declared model fails the request in tests."""
from __future__ import annotations

from typing import Optional

import pytest

from chalicelib.core.api import Endpoint
from chalicelib.core.models import PageModel, ResponseModel
from chalicelib.core.response_check import ResponseMismatch, check_response


class Thing(ResponseModel):
    thing_id: str
    note: Optional[str] = None


class ThingPage(PageModel):
    items: list[Thing]


def _endpoint(response: object, status: int = 200) -> Endpoint:
    return Endpoint("/things", "GET", None, None, None, response, status, "s", "t", (), ())


@pytest.fixture(autouse=True)
def _on(monkeypatch):
    monkeypatch.setenv("CHECK_RESPONSES", "1")


def test_the_declared_shape_passes_nulls_and_absence_alike():
    check_response(_endpoint(Thing), {"statusCode": 200, "body": {"thingId": "T"}})
    check_response(_endpoint(Thing), {"statusCode": 200, "body": {"thingId": "T", "note": None}})
    check_response(_endpoint(ThingPage), {"statusCode": 200, "body": {"items": [{"thingId": "T"}], "nextToken": None}})


@pytest.mark.parametrize("body", [
    {"thingId": "T", "extra": 1},          # a field the model does not declare
    {"note": "n"},                         # a declared field missing
    {"thingId": 5},                        # of another type
    {"items": [{"thingId": "T", "x": 1}]},  # nested
])
def test_anything_else_is_a_mismatch(body):
    model = ThingPage if "items" in body else Thing
    with pytest.raises(ResponseMismatch):
        check_response(_endpoint(model), {"statusCode": 200, "body": body})


def test_other_statuses_and_the_switch_off_are_not_checked(monkeypatch):
    check_response(_endpoint(Thing), {"statusCode": 503, "body": {"anything": 1}})
    monkeypatch.setenv("CHECK_RESPONSES", "0")
    check_response(_endpoint(Thing), {"statusCode": 200, "body": {"anything": 1}})
