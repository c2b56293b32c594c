"""uvicorn's httptools protocol (`protocols.http.httptools_impl`, an implementation module):
obesity/serving/http_limits.py extends it with a deadline for each request head, using its
`connection_made`, `on_message_begin`, `on_headers_complete`, `loop` and `transport`."""

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HttpToolsProtocol"]
