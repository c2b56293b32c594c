"""What a client hears when a request is refused: one error shape (`ErrorBody`, every bad field
named) for every 4xx and 5xx, the checks of a JSON body before a handler runs, and how the
OpenAPI document describes those answers."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, NoReturn

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec

from obesity.serving.schema import (
    Batch,
    ErrorBody,
    FieldError,
    MalformedBody,
    Person,
    batch_errors,
    error_at_path,
    parse_leniently,
    person_errors,
)

log = logging.getLogger(__name__)
JSON = "application/json"


class ApiError(HTTPException):
    """A client error carrying the list of bad fields."""

    def __init__(self, status: int, detail: str, errors: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, extra=errors or [], headers=headers)


def checked_body(kind: type) -> Any:
    """A before-request hook: content type, then the whole body against `kind`.

    Litestar would stop at the first bad field; this names them all, and bounds batch sizes.
    """

    async def check(request: Request) -> None:
        if request.content_type[0] != JSON:
            raise ApiError(415, f"send the body as {JSON} (got {request.content_type[0] or 'none'})")
        body = await request.body()  # over the body limit: 413 from Litestar
        limit = request.app.state.batch_limit
        try:
            value: Any = msgspec.json.decode(body, type=kind)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            # malformed: let the lenient parser name the problem (a field if it can)
            _invalid(body, kind, limit, exc)
        if kind is Batch and len(value.rows) > limit:
            raise ApiError(413, f"a batch holds at most {limit} rows (got {len(value.rows)})")

    return check


def _invalid(body: bytes, kind: type, limit: int, exc: Exception) -> NoReturn:
    """The 4xx for a body msgspec refused (`exc`), naming every bad field where there are any."""
    try:
        obj = parse_leniently(body)
    except MalformedBody as malformed:
        raise ApiError(400, str(malformed)) from None
    if kind is Batch and isinstance(obj, dict) and isinstance(obj.get("rows"), list) \
            and len(obj["rows"]) > limit:
        raise ApiError(413, f"a batch holds at most {limit} rows (got {len(obj['rows'])})")
    errors = person_errors(obj) if kind is Person else batch_errors(obj)
    if not errors and isinstance(exc, msgspec.ValidationError):
        errors = [error_at_path(str(exc))]  # e.g. a bad first value of a duplicated key
    if not errors:
        raise ApiError(400, f"malformed JSON: {exc}")
    raise ApiError(400, "invalid input", errors)


def error_spec(description: str) -> ResponseSpec:
    """An error answer in the OpenAPI document: its shape, no example (Litestar would invent
    one at random, e.g. status 3433, which Swagger UI shows as if it were real)."""
    return ResponseSpec(ErrorBody, description=description, generate_examples=False)


ERRORS = {
    400: error_spec("Malformed JSON or invalid fields (all named)"),
    413: error_spec("Body or batch over its limit"),
    415: error_spec("Content type is not application/json"),
    503: error_spec("No model loaded yet"),
}


def http_error(request: Request, exc: HTTPException) -> Response[ErrorBody]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    errors = [FieldError(_utf8(e.field), _utf8(e.message), e.line) if isinstance(e, FieldError)
              else FieldError(_utf8(str(e.get("key", ""))), _utf8(str(e.get("message", ""))))
              for e in errors]
    status, detail = exc.status_code, _utf8(exc.detail)
    if status == 413 and detail == HTTPStatus(413).phrase:  # Litestar's body limit: say which
        detail = (f"the body is over this service's limit of {request.app.state.body_limit:,} "
                  f"bytes (body_limit_bytes)")
    body = ErrorBody(status, HTTPStatus(status).phrase, detail, errors)
    return Response(body, status_code=status, headers=exc.headers)


def internal_error(request: Request, exc: Exception) -> Response[ErrorBody]:
    log.exception("%s %s failed", request.method, request.url.path)
    body = ErrorBody(500, "Internal Server Error", "the server failed; the error is in its log")
    return Response(body, status_code=500)


def _utf8(text: str) -> str:
    """`text` as valid UTF-8: a client's JSON may escape a lone surrogate (`"\\ud800"`) into a
    key we echo, which no JSON encoder can write; it is escaped back instead."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text
