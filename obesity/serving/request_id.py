"""`X-Request-ID`: taken from the request when it is a sane token, else generated; returned on
every response (errors, 404 and 405 too), kept in the ASGI scope for the prediction log, and put
on the log lines written while the request is answered (the access log's among them), so one
request can be followed from the access log to the prediction log."""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import time
from typing import Any

HEADER = b"x-request-id"
SCOPE_KEY = "obesity.request_id"
_SANE = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")  # a client's id is echoed: nothing else


def of_scope(scope: Any) -> str:
    """The id of the request in this ASGI scope, decided once: the client's, or a new one."""
    rid = scope.get(SCOPE_KEY)
    if rid is None:
        given = next((value for name, value in scope.get("headers", ()) if name == HEADER), None)
        rid = scope[SCOPE_KEY] = (given.decode() if given is not None and _SANE.fullmatch(given)
                                  else new_id())
        # uvicorn answers each request in a task of its own: the id stays with this request
        _CURRENT.set(rid)
    return rid


def new_id() -> str:
    """32 hex digits: the time in ms, then 80 random bits. Ordered by time, so the prediction
    log's index on request_id grows at its end instead of walking a B-tree for a random key."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def stamp(message: Any, scope: Any) -> None:
    """Put the id on a response's start message. Called for every message the app sends (a
    Litestar `before_send` hook, which also sees the answers of requests no route matched)."""
    if message["type"] == "http.response.start":
        message["headers"] = [*message.get("headers", ()), (HEADER, of_scope(scope).encode())]


def request_id(request: Any) -> str:
    """The id of `request` (a Litestar Request)."""
    return of_scope(request.scope)


_CURRENT: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class LogFilter(logging.Filter):
    """Gives each log record `request_id`: the id of the request being answered, or `-`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _CURRENT.get()
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging config, its access lines ending with the request id."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"request_id": {"()": LogFilter}}
    config["handlers"]["access"]["filters"] = ["request_id"]
    config["formatters"]["access"]["fmt"] += " %(request_id)s"
    return config
