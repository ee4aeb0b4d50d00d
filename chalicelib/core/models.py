"""Base for every request and response model.

JSON is camelCase; inputs also accept the snake_case names of the original
plans (agent_id, page_size, ...). Unknown fields are rejected, as AWS APIs
reject unknown parameters: a typo fails loudly instead of being ignored.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar, Optional

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
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


class ShowsNulls(ResponseModel):
    """A response that spells out some fields as null while they are unset (`lastSeenAt: null`).

    The pipeline writes models without None fields; the fields named (by their JSON names) in
    `shown_null` are put back as null, so an entity can be the response without a hand-kept view.
    """

    shown_null: ClassVar[tuple[str, ...]] = ()

    # Unannotated on purpose: an annotated return type would replace the model's own schema in the
    # OpenAPI document.
    @model_serializer(mode="wrap")
    def _with_nulls(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]  # noqa: ANN202
        data = handler(self)
        if isinstance(data, dict):
            for name in self.shown_null:
                data.setdefault(name, None)
        return data


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
