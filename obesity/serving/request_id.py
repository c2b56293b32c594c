"""`X-Request-ID`: taken from the request when it is a sane token, else generated; returned on
every response (errors, 404 and 405 too) and kept in the ASGI scope for the prediction log."""

from __future__ import annotations

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
