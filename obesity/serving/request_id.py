"""`X-Request-ID`: taken from the request when it is a sane token, else generated; returned on
every response (errors too) and kept in the ASGI scope for the prediction log."""

from __future__ import annotations

import re
import uuid
from typing import Any

HEADER = b"x-request-id"
SCOPE_KEY = "obesity.request_id"
_SANE = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")  # a client's id is echoed: nothing else


class RequestIdMiddleware:
    """ASGI middleware (Litestar's `middleware=`): one id per request, on its response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == HEADER), None)
        rid = given.decode() if given is not None and _SANE.fullmatch(given) else uuid.uuid4().hex
        scope[SCOPE_KEY] = rid

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


def request_id(request: Any) -> str:
    """The id of `request` (a Litestar Request)."""
    return str(request.scope.get(SCOPE_KEY, "-"))
