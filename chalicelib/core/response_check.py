"""In tests, every response body is checked against the model its route declares.

With `CHECK_RESPONSES=1` (tests/conftest.py sets it) the pipeline hands each
rendered success to `check_response`: the body is validated by the declared
response model and dumped again the way the pipeline dumps it; the two must
be equal, nulls aside (null and absent say the same). A field the model
does not declare, a declared field missing or of another type, a value the
model would write differently: each is a `ResponseMismatch`, which the
pipeline turns into a 500 and logs, so the test that made the request
fails. Off (the default, and on Lambda) it costs one environment read.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.core.api import Endpoint


class ResponseMismatch(AssertionError):
    """A route answered something other than the model it declares."""


def enabled() -> bool:
    return os.environ.get("CHECK_RESPONSES") == "1"


def check_response(endpoint: Endpoint, result: dict[str, Any]) -> None:
    """Raise ResponseMismatch when `result` (a rendered {statusCode, body}) is not the declared model's."""
    if not enabled():
        return
    status, body = result["statusCode"], result.get("body")
    if endpoint.response is None or status not in (endpoint.status, *endpoint.also) or status == 204:
        return
    import pydantic  # here, not at import (core/lazy.py)

    from chalicelib.core.models import PageModel

    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(endpoint.response)
    try:
        value = adapter.validate_python(body)
    except pydantic.ValidationError as error:
        raise ResponseMismatch(f"{endpoint.method} {endpoint.path}: the body is not a {_name(endpoint)}: "
                               f"{error}") from None
    again = _dump(value, PageModel)
    if _without_nulls(again) != _without_nulls(body):
        raise ResponseMismatch(f"{endpoint.method} {endpoint.path}: the body differs from its {_name(endpoint)}: "
                               f"sent {body!r}, the model says {again!r}")


def _dump(value: Any, page_model: type) -> Any:
    """As core.api dumps a model: camelCase, no None fields, a page's nextToken always present."""
    import pydantic

    if isinstance(value, list):
        return [_dump(v, page_model) for v in value]
    if isinstance(value, pydantic.BaseModel):
        out = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(value, page_model):
            out.setdefault("nextToken", None)
        return out
    return value


def _without_nulls(value: Any) -> Any:
    """A null field and an absent one say the same (a route may spell out `expiresAt: null`)."""
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _name(endpoint: Endpoint) -> str:
    ref = endpoint.response_ref
    return ref if isinstance(ref, str) else getattr(ref, "__name__", repr(ref))
