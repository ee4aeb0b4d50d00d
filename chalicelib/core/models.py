"""Base for every request and response model.

JSON is camelCase; inputs also accept the snake_case names of the original
plans (agent_id, page_size, ...). Unknown fields are rejected, as AWS APIs
reject unknown parameters: a typo fails loudly instead of being ignored.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


# defer_build: a model's validator is built on its first use, not at import, so a
# cold start pays only for the models its handler touches (bench/cold_import.py).
class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
        serialize_by_alias=True, extra="forbid", defer_build=True,
    )


class ResponseModel(BaseModel):
    """Responses: camelCase out, and tolerant of extra fields when read back (tests, SDK)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True, defer_build=True)


class PageModel(ResponseModel):
    """A page of a list: `{"items": [...], "nextToken": ...}`; nextToken is null, not absent, on the last page."""

    next_token: Optional[str] = None


def bounded_json(value: Any, limit: int) -> Any:
    """A field of free-form JSON that is stored as text: finite numbers only (JSON has no NaN or
    Infinity, and a reader of the text would choke on them), at most `limit` bytes as compact JSON.
    For a field_validator; ValueError says what is wrong."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise ValueError("must be JSON: NaN and Infinity are not numbers") from None
    if len(text.encode()) > limit:
        raise ValueError(f"must be at most {limit} bytes as JSON")
    return value
