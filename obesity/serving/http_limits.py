"""A deadline for the request head, which uvicorn does not have.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and answers 503 beyond
`limit_concurrency`, but a client that sends half a request line or header and then nothing holds
its connection for ever (slowloris). This protocol closes a connection whose request head is not
complete `header_timeout` seconds after the connection opened, or after the first byte of a later
request on it arrived. An idle kept-alive connection is uvicorn's `timeout_keep_alive` to close:
arming the deadline at the end of a response would cut idle connections after `header_timeout`
instead, and a client reusing one at that moment would see it drop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from obesity.compat.uvicorn_http import HttpToolsProtocol


class HeadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request head."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if getattr(self, "_head_deadline", None) is None:  # a later request's first byte
            self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        handle = getattr(self, "_head_deadline", None)
        if handle is not None:
            handle.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol(header_timeout: float) -> Any:
    """The protocol class for `uvicorn.run(http=...)` with this deadline."""
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"header_timeout": header_timeout})
