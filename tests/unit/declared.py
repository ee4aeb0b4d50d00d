"""What a route declares, checked against what its service returns (no HTTP, no AWS).

    assert_declared("GET", "/jobs/{jobId}", jobs.get(ctx, JID))

The result must be an instance of the declared response model (a service returns the
model itself, never a dict to be re-wrapped) and its JSON, as the pipeline renders it,
must validate against that model and dump back unchanged. Until the pipeline's own check
(core/response_check.py, another branch) lands, this is how a service test shows it.
"""
from __future__ import annotations

import importlib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from chalicelib.core import api

CHALICELIB = Path(api.__file__).resolve().parents[1]


def declared(method: str, path: str) -> Any:
    """The response model the route `method path` declares (its domain's routes are registered first)."""
    for routes in sorted(CHALICELIB.glob("*/routes.py")):
        importlib.import_module(f"chalicelib.{routes.parent.name}.routes")
    [ep] = [e for e in api.ENDPOINTS if e.method == method and e.path == path]
    return ep.response


def assert_declared(method: str, path: str, result: Any) -> Any:
    """The result's JSON as the route answers it, after checking it against the declared model."""
    model = declared(method, path)
    body = api._dump(result)
    if typing.get_origin(model) is list:
        (item,) = typing.get_args(model)
        assert isinstance(result, list) and all(isinstance(r, item) for r in result), (model, result)
    else:
        assert isinstance(model, type) and issubclass(model, BaseModel), model
        assert isinstance(result, model), f"{method} {path} returned {type(result).__name__}, declares {model.__name__}"
    again = TypeAdapter(model).validate_python(body)
    assert api._dump(again) == body, f"{method} {path}: the declared model does not round-trip the body"
    return body
