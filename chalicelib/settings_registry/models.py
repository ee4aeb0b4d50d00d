from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import ConfigDict, Field, PlainValidator, RootModel, WithJsonSchema, field_validator, model_validator

from chalicelib.core.models import ApiModel, PageModel, ResponseModel
from chalicelib.settings_registry.rules import is_number

MAX_ENTRIES = 500
MAX_TEXT = 4096
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _number(value: Any) -> Any:
    if not is_number(value):
        raise ValueError("must be a finite number below 1E126 in magnitude")
    return value


def _scalar(value: Any) -> Any:
    if isinstance(value, bool) or is_number(value):
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"must be at most {MAX_TEXT} characters")
        return value
    raise ValueError("must be a boolean, a finite number below 1E126 in magnitude, or a string")


def _option(value: Any) -> Any:
    if is_number(value) or (isinstance(value, str) and len(value) <= 256):
        return value
    raise ValueError("must be a finite number below 1E126 in magnitude, or a string of at most 256 characters")


# One validator per value (not a Union), so an error names the field, not a union branch.
Number = Annotated[Union[int, float], PlainValidator(_number), WithJsonSchema({"type": "number"})]
Scalar = Annotated[Union[bool, int, float, str], PlainValidator(_scalar), WithJsonSchema(
    {"anyOf": [{"type": "boolean"}, {"type": "number"}, {"type": "string", "maxLength": MAX_TEXT}]})]
Option = Annotated[Union[str, int, float], PlainValidator(_option), WithJsonSchema(
    {"anyOf": [{"type": "number"}, {"type": "string", "maxLength": 256}]})]


def _name(value: str, forbidden: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be blank")
    if CONTROL.search(value) or any(ch in value for ch in forbidden):
        shown = " or ".join(repr(c) for c in forbidden) if forbidden else ""
        raise ValueError(f"{what} must not contain control characters" + (f" or {shown}" if shown else ""))
    return value


class Constraints(ApiModel):
    min: Optional[Number] = None
    max: Optional[Number] = None
    enum: Optional[list[Option]] = Field(default=None, min_length=1, max_length=500)
    pattern: Optional[str] = Field(default=None, min_length=1, max_length=500)


class SettingEntryIn(ApiModel):
    game_type: str = Field(min_length=1, max_length=64)
    file_type: str = Field(min_length=1, max_length=128)
    section: str = Field(min_length=1, max_length=256)
    key: str = Field(min_length=1, max_length=256)
    value_type: Literal["int", "float", "bool", "string", "enum"]
    default: Optional[Scalar] = None
    constraints: Optional[Constraints] = None
    description: Optional[str] = Field(default=None, max_length=2000)

    @field_validator("game_type", "file_type")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _name(value, "", "a name")

    @field_validator("section")
    @classmethod
    def _section(cls, value: str) -> str:
        return _name(value, "[]", "a section")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return _name(value, "=", "a key")


class SettingEntries(ApiModel):
    entries: list[SettingEntryIn] = Field(min_length=1, max_length=MAX_ENTRIES)


class RegistryPut(RootModel):  # type: ignore[type-arg]  # unparametrized on purpose: see model_config
    """One entry, or {entries: [...]}. Dispatched on the `entries` field, so a bad
    request reports the fields of the form it used (not both union branches)."""

    # Built on first use, like every ApiModel; `root` annotated rather than RootModel[...], whose
    # parametrized class pydantic would build at import (bench/cold_import.py).
    model_config = ConfigDict(defer_build=True)
    root: Union[SettingEntryIn, SettingEntries]

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> "RegistryPut":
        form = SettingEntries if isinstance(obj, dict) and "entries" in obj else SettingEntryIn
        return cls.model_construct(form.model_validate(obj, *args, **kwargs))


class ConstraintsOut(ResponseModel):
    min: Optional[Union[int, float]] = None
    max: Optional[Union[int, float]] = None
    enum: Optional[list[Union[str, int, float]]] = None
    pattern: Optional[str] = None


class SettingEntry(ResponseModel):
    """A registry entry: the one entity of the registry item (settings_registry/store.py maps it), the
    response, and what the validation rules read (`as_rule`). The org is never shown."""

    org_id: str = Field(default="", exclude=True)  # not in the JSON: a response read back has none
    game_type: str
    file_type: str
    section: str
    key: str
    value_type: Literal["int", "float", "bool", "string", "enum"]
    default: Optional[Union[bool, int, float, str]] = None
    constraints: Optional[ConstraintsOut] = None
    description: Optional[str] = None
    updated_at: str

    @classmethod
    def of(cls, org_id: str, entry: SettingEntryIn, updated_at: str) -> "SettingEntry":
        """The entry a validated request entry stores (empty constraints are none)."""
        given = entry.model_dump(exclude_none=True)
        if not given.get("constraints"):
            given.pop("constraints", None)
        return cls.model_validate({**given, "org_id": org_id, "updated_at": updated_at})

    def as_rule(self) -> dict[str, Any]:
        """The entry in its camelCase JSON form, as rules.index reads it."""
        return self.model_dump(by_alias=True, exclude_none=True)


class SettingEntriesOut(ResponseModel):
    entries: list[SettingEntry]


class RegistryPutResult(RootModel):  # type: ignore[type-arg]  # unparametrized: built on first use
    """The stored entry, or {entries: [...]}: the same form as the request."""

    model_config = ConfigDict(defer_build=True)
    root: Union[SettingEntry, SettingEntriesOut]


class SettingList(PageModel):
    items: list[SettingEntry]


class RegistryQuery(ApiModel):
    game_type: Optional[str] = Field(default=None, min_length=1, max_length=64)
    file_type: Optional[str] = Field(default=None, min_length=1, max_length=128)
    section: Optional[str] = Field(default=None, min_length=1, max_length=256)
    key: Optional[str] = Field(default=None, min_length=1, max_length=256)
    limit: int = Field(default=100, ge=1, le=1000)
    next_token: Optional[str] = None


class RegistryKey(ApiModel):
    game_type: str = Field(min_length=1, max_length=64)
    file_type: str = Field(min_length=1, max_length=128)
    section: str = Field(min_length=1, max_length=256)
    key: str = Field(min_length=1, max_length=256)


class ValidateRequest(ApiModel):
    game_type: str = Field(min_length=1, max_length=64)
    file_type: str = Field(min_length=1, max_length=128)
    content: Optional[str] = None
    values: Optional[dict[str, dict[str, Any]]] = None

    @model_validator(mode="after")
    def _one_form(self) -> "ValidateRequest":
        if (self.content is None) == (self.values is None):
            raise ValueError("send exactly one of content (INI text) or values ({section: {key: value}})")
        return self


class ValidationIssue(ResponseModel):
    section: str
    key: str
    message: str
    line: Optional[int] = None


class UnknownKey(ResponseModel):
    section: str
    key: str
    line: Optional[int] = None


class ValidationReport(ResponseModel):
    valid: bool
    errors: list[ValidationIssue]
    unknown_keys: list[UnknownKey]
    checked: int
