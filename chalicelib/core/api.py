"""Every REST route goes through `endpoint`: one pipeline for the contract's conventions.

    body limit (413) -> auth (401/403, audited) -> query and body validation
    (400 naming the field) -> Idempotency-Key (POST) -> the domain function ->
    camelCase JSON out.

Domain functions receive a `Call` and return a pydantic model, a dict/list,
None (204), or a `Reply` for another status. They raise ApiError subclasses
for 4xx (with no HTTP status: `ERROR_STATUS` here maps each code). Anything
else is logged (one JSON line through the Powertools logger, with the trace
id) and answered 500 with no detail. The
registry of endpoints is also the source of the OpenAPI document.
"""
from __future__ import annotations

import importlib
import json
import logging
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterable, Union

from chalice import Blueprint, Response

from chalicelib.core import audit, cors, idempotency, ids, lazy, observability, response_check, strict_json
from chalicelib.core.auth import KeyDenied, Principal, Scope, authenticate, bearer_token
from chalicelib.core.config import settings
from chalicelib.core.tx import TransactionConflict
from chalicelib.core.context import Ctx
from chalicelib.core.errors import (ApiError, Forbidden, Internal, NotFound, PayloadTooLarge, Unauthorized,
                                    Unavailable, ValidationError)

if TYPE_CHECKING:
    import pydantic

log = logging.getLogger(__name__)
JSON = "application/json"

# The one table from an error's code to its HTTP status: services raise
# domain errors (core/errors.py) that know no status. Every code the contract
# names is here; the OpenAPI document and the tests read it. RATE_LIMITED is
# API Gateway's throttling (usage plans) and the GitHub tools' per-organization
# limit (errors.RateLimited); METHOD_NOT_ALLOWED and UNSUPPORTED_MEDIA_TYPE are Chalice's own
# 405/415, reshaped by `contract_errors`.
ERROR_STATUS: dict[str, int] = {
    "VALIDATION_ERROR": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "INVALID_TRANSITION": 409,
    "JOB_NOT_RUNNING": 409,
    "IDEMPOTENCY_KEY_REUSED": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNAVAILABLE": 503,
    "INTERNAL": 500,
    "METHOD_NOT_ALLOWED": 405,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
}


def status_of(error: ApiError) -> int:
    """The HTTP status of a domain error (a code missing from the table is a bug: 500)."""
    return ERROR_STATUS.get(error.code, 500)


@dataclass
class Reply:
    """A response other than 200 JSON: another status, headers, or no body."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """What a domain function needs to know about the request."""

    principal: Principal | None
    params: dict[str, str]
    query: Any
    body: Any
    raw_body: bytes
    headers: dict[str, str]
    trace_id: str
    # The request's unit of work, when the pipeline stages it (an idempotent POST; core/idempotency.py).
    unit_of_work: Callable[[Ctx], Any] | None = None

    @property
    def org_id(self) -> str:
        assert self.principal is not None
        return self.principal.org_id

    @property
    def actor(self) -> str:
        """Who did it, for audit events and `claimedBy`-style fields."""
        return self.principal.actor if self.principal else "anonymous"

    @property
    def ctx(self) -> Ctx:
        """What a service receives: the caller and the trace, never the request (the Call -> Ctx adapter)."""
        return Ctx(principal=self.principal, trace_id=self.trace_id, unit_of_work=self.unit_of_work)

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


# A model, or its name in the domain's models module ("CreateJobRequest", "list[LogEntry]"): a
# name is imported on the endpoint's first request (or the OpenAPI document), not when app.py
# registers the route, so a cold start does not import every domain's models (core/lazy.py).
ModelRef = Union[type, str, None]
_LIST_OF = re.compile(r"list\[(\w+)\]")


@dataclass
class Endpoint:
    path: str
    method: str
    scope: Scope | None
    body_ref: ModelRef
    query_ref: ModelRef
    response_ref: ModelRef
    status: int
    summary: str
    tag: str
    errors: tuple[int, ...]
    content_types: tuple[str, ...]
    # Other success statuses answered with the same body model (POST /tasks: 200 for an existing task).
    also: tuple[int, ...] = ()
    # Where names in the refs are looked up: the models module beside the handler's routes module.
    models_module: str = ""
    # How an Idempotency-Key is honoured: "staged" (the service's one commit joins the record's
    # transaction) or "locked" (a service that cannot stage: an in-progress lock around it).
    idempotency: str = "staged"

    @cached_property
    def body(self) -> type[pydantic.BaseModel] | None:
        model: type[pydantic.BaseModel] | None = self._resolve(self.body_ref)
        return model

    @cached_property
    def query(self) -> type[pydantic.BaseModel] | None:
        model: type[pydantic.BaseModel] | None = self._resolve(self.query_ref)
        return model

    @cached_property
    def response(self) -> Any:
        return self._resolve(self.response_ref)

    def _resolve(self, ref: ModelRef) -> Any:
        if not isinstance(ref, str):
            return ref
        module = importlib.import_module(self.models_module)
        if (item := _LIST_OF.fullmatch(ref)) is not None:
            return list[getattr(module, item[1])]  # type: ignore[misc]  # a runtime alias, as the routes wrote it
        return getattr(module, ref)


ENDPOINTS: list[Endpoint] = []
IDEMPOTENCY_MODES = ("staged", "locked")


def load_all() -> None:
    """Import now what the routes import on first use: every service and model (core/lazy.py).

    For a long-running process serving from many threads (the local stack): the
    first requests then never race each other through the same imports.
    """
    lazy.import_all()
    for ep in ENDPOINTS:
        ep.body, ep.query, ep.response  # noqa: B018 - resolving is the point


def endpoint(bp: Blueprint, path: str, method: str, *, scope: Scope | None, summary: str, tag: str,
             body: ModelRef = None, query: ModelRef = None,
             response: ModelRef = None, status: int = 200, errors: Iterable[int] = (),
             content_types: Iterable[str] = (JSON,),
             also: Iterable[int] = (), idempotency: str = "staged") -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
    """Register a route on `bp` whose handler takes a Call (see module doc).

    body, query and response name models as `ModelRef`s: by name, looked up in the models
    module of the handler's domain (`chalicelib.jobs.routes` -> `chalicelib.jobs.models`).
    idempotency: "locked" for a POST whose service cannot stage its writes (more than one
    commit, AWS calls after its commit, SQS/S3 side effects, bulk writes); see core/idempotency.py.
    """
    if idempotency not in IDEMPOTENCY_MODES:
        raise ValueError(f"idempotency is one of {IDEMPOTENCY_MODES}")
    standard = {400, 413} | ({401, 403} if scope else set())
    if method == "POST":  # Idempotency-Key reused with another body: 409 IDEMPOTENCY_KEY_REUSED
        standard.add(409)

    def decorator(handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
        spec = Endpoint(path, method, scope, body, query, response, status, summary, tag,
                        tuple(sorted(standard | set(errors))), tuple(content_types), tuple(also),
                        models_module=handler.__module__.rpartition(".")[0] + ".models",
                        idempotency=idempotency)

        def view(**params: str) -> Response:
            return _handle(spec, handler, bp, params)

        view.__name__ = handler.__name__
        bp.route(path, methods=[method], content_types=list(content_types), cors=cors.route_config())(view)
        ENDPOINTS.append(spec)
        return handler

    return decorator


@observability.traced
def _handle(spec: Endpoint, handler: Callable[[Call], Any], bp: Blueprint, params: dict[str, str]) -> Response:
    request = bp.current_request
    headers = {k.lower(): v for k, v in request.headers.items()}
    trace_id = valid_trace_id(headers.get("x-trace-id"))
    observability.bind_trace(trace_id, bp.lambda_context)
    source = source_of(request)
    principal: Principal | None = None
    try:
        received = request.raw_body or b""
        raw = received.encode() if isinstance(received, str) else received
        if len(raw) > settings().max_body_bytes:
            raise PayloadTooLarge(f"request body is over {settings().max_body_bytes} bytes")
        principal = _authenticate(spec, headers, request.method, request.path, trace_id, source)
        if principal is not None and spec.scope is not None:
            principal.require(spec.scope)
        check_path_params(params)
        call = Call(principal, params, _validate_query(spec, request.query_params), None, raw, headers, trace_id)
        if spec.body is not None:
            call.body = _validate_body(spec.body, raw)
        key = headers.get("idempotency-key")
        if spec.method == "POST" and key:
            if len(key) > 255:
                raise ValidationError.field("Idempotency-Key", "at most 255 characters")
            scope_key = idempotency_scope(principal, spec.method, request.path, key)
            if spec.idempotency == "locked":
                result = idempotency.run_locked(scope_key, _canonical_body(call, raw),
                                                lambda: _render(spec, handler(call)))
            else:
                def staged(unit_of_work: idempotency.UnitOfWork) -> dict[str, Any]:
                    call.unit_of_work = unit_of_work
                    return _render(spec, handler(call))

                result = idempotency.run_staged(scope_key, _canonical_body(call, raw), staged, status_of)
        else:
            result = _render(spec, handler(call))
    except TransactionConflict:
        # Contention that outlasted the domain's retries: the request did
        # nothing and may be repeated, which is what 503 + Retry-After says.
        result = _error(Unavailable("the item is busy with another change; retry",
                                    headers={"Retry-After": "1"}))
    except ApiError as error:
        if isinstance(error, Forbidden):
            # Every 403, from the scope check or a domain rule (another agent's
            # key, a non-root admin), is an authorization denial to audit.
            audit.record_denial(principal.org_id if principal else None,
                                principal.key_id if principal else "anonymous",
                                error.message, request.method, request.path, trace_id, status=403, source=source)
            observability.count("Denials")
        result = _error(error)
    except Exception:  # noqa: BLE001 - the one place unexpected failures become a 500
        # One JSON line through the Powertools logger (trace id bound above), stack trace included
        # in the log only: the response says nothing of it.
        log.exception("unhandled error in %s %s", spec.method, spec.path)
        result = _error(Internal("internal error"))
    result["headers"] = {**result.get("headers", {}), "X-Trace-Id": trace_id}
    body = result.get("body")
    return Response(body=json.dumps(body, separators=(",", ":")) if body is not None else "",
                    status_code=result["statusCode"], headers=result["headers"])


def _authenticate(spec: Endpoint, headers: dict[str, Any], method: str, path: str, trace_id: str,
                  source: str | None = None) -> Principal | None:
    if spec.scope is None:
        return None
    return authenticate_or_401(headers, method, path, trace_id, source)


def authenticate_or_401(headers: dict[str, Any], method: str, path: str, trace_id: str | None,
                        source: str | None = None) -> Principal:
    """The caller's principal, or Unauthorized after auditing the denial."""
    try:
        return authenticate(bearer_token(headers))
    except KeyDenied as denied:
        audit.record_denial(denied.org_id, denied.key_id or "anonymous", denied.reason, method, path, trace_id,
                            source=source)
        observability.count("Denials")
        raise Unauthorized(f"{denied.reason}: send Authorization: Bearer <apiKey>") from None


# --- request hygiene (issue 9): what may come in from the edge ---------------

# A trace id lands in audit items and index keys (GSI2PK): bounded and plain.
TRACE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# No id we mint or accept is longer; a longer path parameter cannot name anything.
MAX_PATH_PARAM_LENGTH = 128


def valid_trace_id(presented: str | None) -> str:
    """The client's X-Trace-Id when it is 1..128 plain characters, else a fresh id (never an error)."""
    if presented and TRACE_ID.fullmatch(presented):
        return presented
    return ids.new_id()


def source_of(request: Any) -> str | None:
    """The caller's address as API Gateway saw it (the per-source denial count's key)."""
    context = getattr(request, "context", None) or {}
    return (context.get("identity") or {}).get("sourceIp")


def check_path_params(params: dict[str, str]) -> None:
    """400 for a path parameter no id can be (too long, a lone surrogate); 404 for a dot segment."""
    for name, value in params.items():
        if value in (".", ".."):
            raise NotFound(f"no resource at a '{value}' path segment")
        if len(value) > MAX_PATH_PARAM_LENGTH:
            raise ValidationError.field(name, f"at most {MAX_PATH_PARAM_LENGTH} characters")
        try:
            strict_json.check_text(name, value)
        except strict_json.BadJson as bad:
            raise ValidationError.field(bad.field, bad.message) from None


def idempotency_scope(principal: Principal | None, method: str, path: str, key: str) -> str:
    """An Idempotency-Key is scoped to the calling API key (as payment APIs do), the method and the path."""
    caller = principal.key_id if principal else "-"
    return f"{caller}:{method}:{path}:{key}"


def _canonical_body(call: Call, raw: bytes) -> Any:
    return call.body.model_dump(mode="json") if call.body is not None else raw.decode("utf-8", "replace")


def pydantic_details(error: pydantic.ValidationError, prefix: str = "") -> list[dict[str, str]]:
    details = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"] if part != "__root__")
        details.append({"field": f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "body"), "message": item["msg"]})
    return details


def _validation_error(details: list[dict[str, str]]) -> ValidationError:
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
    return ValidationError(f"invalid request: {summary}", details)


def _validate_query(spec: Endpoint, query_params: Any) -> Any:
    if spec.query is None:
        return None
    import pydantic  # here, not at import (core/lazy.py)

    try:
        return spec.query.model_validate(dict(query_params or {}))
    except pydantic.ValidationError as e:
        raise _validation_error(pydantic_details(e)) from None


def _validate_body(model: type[pydantic.BaseModel], raw: bytes) -> Any:
    import pydantic

    try:
        # Only what a strict JSON parser reads back and DynamoDB stores (see
        # core/strict_json.py); nesting deep enough to exhaust the parser's
        # recursion is hostile input.
        data = strict_json.loads(raw) if raw.strip() else {}
    except strict_json.BadJson as bad:
        raise ValidationError.field(bad.field, bad.message) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValidationError.field("body", "is not valid JSON") from None
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as e:
        raise _validation_error(pydantic_details(e)) from None


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float)):
        return value
    import pydantic  # here, not at import (core/lazy.py): a plain JSON value never needs it

    from chalicelib.core.models import PageModel

    if isinstance(value, pydantic.BaseModel):
        out = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(value, PageModel):
            out.setdefault("nextToken", None)  # the last page says so explicitly
        return out
    return value


def _render(spec: Endpoint, value: Any) -> dict[str, Any]:
    if isinstance(value, Reply):
        result = {"statusCode": value.status, "headers": {"Content-Type": JSON, **value.headers},
                  "body": _dump(value.body)}
    elif value is None and spec.status == 204:
        return {"statusCode": 204, "headers": {}, "body": None}
    else:
        result = {"statusCode": spec.status, "headers": {"Content-Type": JSON}, "body": _dump(value)}
    response_check.check_response(spec, result)  # tests only (CHECK_RESPONSES=1): the body is the declared model
    return result


def _error(error: ApiError) -> dict[str, Any]:
    return {"statusCode": status_of(error), "headers": {"Content-Type": JSON, **error.headers}, "body": error.body()}


_CHALICE_CODES = {405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE", 400: "VALIDATION_ERROR",
                  404: "NOT_FOUND", 403: "FORBIDDEN", 401: "UNAUTHORIZED", 500: "INTERNAL"}


# A control character in a header value (HTAB aside) is never valid HTTP (RFC 9110 5.5).
HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_ECHOED = 200  # characters of a refused header value a message may quote


def malformed_header(headers: Any) -> str | None:
    """The name of the first header whose value holds a control character, else None."""
    for name, value in (headers or {}).items():
        if HEADER_CONTROL.search(value):
            return str(name)
    return None


def contract_errors(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: Chalice's own errors (405, 415, ...) in the contract's error shape.

    Chalice answers a wrong method (405) or content type (415) before the
    route's view runs, so before its auth: a caller without a valid key must
    learn nothing about the route, and gets the 401 first (see `_after_auth`).

    A header value with a control character (a NUL in Content-Type) is refused
    first, 400 naming the header, as the local stack's HTTP parser refuses it
    (devstack/http_protocol.py): Chalice would have answered 415 quoting the NUL,
    or, after a `;`, matched the media type and run the route.
    """
    if (name := malformed_header(getattr(event, "headers", None))) is not None:
        error = ValidationError.field(name[:100].title(), "holds a control character (never valid in an HTTP header)")
        result = _error(error)
        return Response(body=json.dumps(result["body"], separators=(",", ":")), status_code=400,
                        headers={**result["headers"], "X-Trace-Id": ids.new_id()})
    response = get_response(event)
    if response.status_code >= 400 and isinstance(response.body, (dict, str)):
        body = response.body
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                return response
        if isinstance(body, dict) and "Code" in body and "error" not in body:
            if response.status_code in (405, 415):
                denied = _after_auth(event)
                if denied is not None:
                    return denied
            code = _CHALICE_CODES.get(response.status_code, "VALIDATION_ERROR")
            message = str(body.get("Message", ""))  # may quote the request (Unsupported media type: ...)
            if len(message) > MAX_ECHOED:
                message = message[:MAX_ECHOED] + "..."
            response.body = json.dumps({"error": {"code": code, "message": message}})
            response.headers["Content-Type"] = JSON
    return response


def _after_auth(request: Any) -> Response | None:
    """The 401 a request without a valid key gets on a route that needs one, else None."""
    path = (getattr(request, "context", None) or {}).get("resourcePath")
    if path is not None and all(e.scope is None for e in ENDPOINTS if e.path == path):
        return None  # a public route (GET /health): no key to check
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    trace_id = valid_trace_id(headers.get("x-trace-id"))
    try:
        authenticate_or_401(headers, request.method, path or "", trace_id, source_of(request))
    except Unauthorized as error:
        result = _error(error)
        return Response(body=json.dumps(result["body"], separators=(",", ":")), status_code=401,
                        headers={**result["headers"], "X-Trace-Id": trace_id})
    return None


PATH_PARAM = re.compile(r"{([^}]+)}")
