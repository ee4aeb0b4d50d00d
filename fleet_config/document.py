"""The configuration document of an agent or a pool (the contract's "Fleet configuration").

    {logLevel?: DEBUG|INFO|WARN|ERROR,
     uplink?: {batchRecords, lingerMs},
     buffer?: {maxDbMb, onFull: refuse|drop-oldest},
     adapters?: [{name, type: tail|exec|prometheus, table, ...}]}

    tail        {path (a glob), multilineStart?, maxLineBytes?}
    exec        {command: [argv], intervalSeconds, timeoutSeconds}
    prometheus  {url, intervalSeconds}

Decisions where the contract is silent (docs/GATEWAY.md, "Configuration"):
- One spelling: the camelCase names of the published JSON Schema. The document is data that is
  stored and handed to gateways as it was validated, so the snake_case input aliases the REST
  bodies accept are refused here like any other unknown key.
- Strict types: `"batchRecords": "500"` is refused, as the JSON Schema refuses it (no coercion
  that the schema would not also allow).
- `uplink` and `buffer` are whole objects: every field is required and a later layer replaces the
  object as a whole (merge.py).
- An explicit `null` for a top-level key removes what lower layers set (the gateway's default
  applies again); `{"name": ..., "remove": true}` in `adapters` removes a lower layer's adapter of
  that name. Both are meaningful only in a layer: a merged document never contains them.
- Beyond the JSON Schema the models also check that `multilineStart` compiles as a Python regular
  expression, that adapter names are unique within one document and that a document is at most
  MAX_DOCUMENT_BYTES as compact JSON (a merged document too: the control plane refuses a write
  whose merge would break any of these for an agent it reaches).
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import (
    BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator,
)
from pydantic.alias_generators import to_camel

ADAPTER_TYPES = ("tail", "exec", "prometheus")
# Adapter names key the adapters' state and counters (gateway /metrics labels): a safe alphabet.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# The control plane's ingest table names (chalicelib/ingest/rules.py TABLE_PATTERN, the same rule).
TABLE_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
MAX_ADAPTERS = 64
# A document (one layer, and the merged one) as compact JSON: small enough that an agent's layers,
# its merged document and the last one it applied all fit DynamoDB's 400 KB item with room.
MAX_DOCUMENT_BYTES = 16 * 1024
MAX_ARGV = 64
MAX_ARG_CHARS = 4096
MAX_PATH_CHARS = 4096
MAX_PATTERN_CHARS = 1000
MAX_LINE_BYTES = 1024 * 1024
MAX_BATCH_RECORDS = 500          # POST /ingest takes at most 500 records
MAX_LINGER_MS = 60_000
MAX_DB_MB = 1024 * 1024          # 1 TiB
MIN_INTERVAL_SECONDS = 0.1
MAX_INTERVAL_SECONDS = 86_400.0
MAX_TIMEOUT_SECONDS = 3_600.0


class _Part(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=False, validate_by_alias=True,
                              serialize_by_alias=True, extra="forbid", strict=True, frozen=True)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


class UplinkSettings(_Part):
    """How the gateway batches records towards POST /ingest."""

    batch_records: int = Field(ge=1, le=MAX_BATCH_RECORDS, description="records per POST /ingest")
    linger_ms: int = Field(ge=0, le=MAX_LINGER_MS, description="how long a partial batch waits for company")


class BufferSettings(_Part):
    """The gateway's on-disk buffer."""

    max_db_mb: float = Field(gt=0, le=MAX_DB_MB, description="the disk cap of the buffer, in MiB")
    on_full: Literal["refuse", "drop-oldest"]


class _AdapterBase(_Part):
    name: str = Field(pattern=NAME_PATTERN, description="unique within the document; the merge key")
    table: str = Field(pattern=TABLE_PATTERN, description="the ingest table its records go to")


class TailAdapter(_AdapterBase):
    """Follow files matching a glob (rotation by rename and by copytruncate)."""

    type: Literal["tail"]
    path: str = Field(min_length=1, max_length=MAX_PATH_CHARS, description="a glob")
    multiline_start: str | None = Field(default=None, min_length=1, max_length=MAX_PATTERN_CHARS,
                                        description="a line matching this regular expression starts a record",
                                        json_schema_extra={"format": "regex"})
    max_line_bytes: int | None = Field(default=None, ge=1, le=MAX_LINE_BYTES)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _no_nul(value)

    @field_validator("multiline_start")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"is not a regular expression: {e}") from None
        return value


class ExecAdapter(_AdapterBase):
    """Run a command (argv, no shell) every intervalSeconds; its JSON output becomes records."""

    type: Literal["exec"]
    command: list[Annotated[str, Field(min_length=1, max_length=MAX_ARG_CHARS)]] = Field(
        min_length=1, max_length=MAX_ARGV, description="argv: the program and its arguments, no shell")
    interval_seconds: float = Field(ge=MIN_INTERVAL_SECONDS, le=MAX_INTERVAL_SECONDS)
    timeout_seconds: float = Field(gt=0, le=MAX_TIMEOUT_SECONDS)

    @field_validator("command")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        return [_no_nul(arg) for arg in value]


class PrometheusAdapter(_AdapterBase):
    """Scrape a metrics endpoint (Prometheus text format) every intervalSeconds."""

    type: Literal["prometheus"]
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://", description="an http(s) URL")
    interval_seconds: float = Field(ge=MIN_INTERVAL_SECONDS, le=MAX_INTERVAL_SECONDS)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if not parts.hostname or any(c.isspace() for c in value):
            raise ValueError("must be an http(s) URL with a host")
        return value


class AdapterRemoval(_Part):
    """In an agent's (or a later pool's) document: drop the adapter of this name that a lower layer set."""

    name: str = Field(pattern=NAME_PATTERN)
    remove: Literal[True]


def _adapter_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return "remove" if "remove" in value else (value.get("type") if isinstance(value.get("type"), str) else None)
    if isinstance(value, AdapterRemoval):
        return "remove"
    tag = getattr(value, "type", None)
    return tag if isinstance(tag, str) else None


Adapter = Annotated[
    Union[Annotated[TailAdapter, Tag("tail")], Annotated[ExecAdapter, Tag("exec")],
          Annotated[PrometheusAdapter, Tag("prometheus")], Annotated[AdapterRemoval, Tag("remove")]],
    Discriminator(_adapter_tag, custom_error_type="adapter_type",
                  custom_error_message="an adapter needs a type (tail, exec or prometheus) or remove: true"),
]


class AgentConfig(_Part):
    """The configuration document (one layer: a pool's or an agent's; also the merged result)."""

    model_config = ConfigDict(title="AgentConfig", json_schema_extra={
        "description": "An edge gateway's configuration document: a pool's, an agent's, or the merge of them "
                       "(docs/GATEWAY.md, Configuration)."})

    log_level: Literal["DEBUG", "INFO", "WARN", "ERROR"] | None = None
    uplink: UplinkSettings | None = None
    buffer: BufferSettings | None = None
    adapters: list[Adapter] | None = Field(default=None, max_length=MAX_ADAPTERS)

    @field_validator("adapters")
    @classmethod
    def _unique_names(cls, adapters: list[Any] | None) -> list[Any] | None:
        seen: dict[str, int] = {}
        for index, adapter in enumerate(adapters or []):
            if adapter.name in seen:
                raise ValueError(f"adapter name {adapter.name!r} appears twice (entries {seen[adapter.name]} and {index})")
            seen[adapter.name] = index
        return adapters

    @model_validator(mode="after")
    def _bounded(self) -> "AgentConfig":
        size = len(json.dumps(self.document(), separators=(",", ":")).encode())
        if size > MAX_DOCUMENT_BYTES:
            raise ValueError(f"the document is {size} bytes as compact JSON; at most {MAX_DOCUMENT_BYTES}")
        return self

    def document(self) -> dict[str, Any]:
        """The document as JSON: the keys that were given, explicit nulls kept (they remove, merge.py)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class ConfigError(ValueError):
    """A document that is not valid: `problems` is a list of (field, message), field as in `adapters.0.path`."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems) or "invalid document")


_TAGS = frozenset((*ADAPTER_TYPES, "remove"))


def field_errors(error: ValidationError) -> list[tuple[str, str]]:
    """(field, message) per problem; the adapter's tag pydantic puts in the location is left out."""
    problems = []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        parts = [str(part) for i, part in enumerate(loc)
                 if not (part in _TAGS and i > 0 and isinstance(loc[i - 1], int))]
        problems.append((".".join(parts) or "document", item["msg"]))
    return problems


def parse(raw: Any) -> AgentConfig:
    """A document from JSON data; ConfigError naming each bad field."""
    if not isinstance(raw, dict):
        raise ConfigError([("document", "must be a JSON object")])
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(field_errors(e)) from None
