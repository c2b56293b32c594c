"""Litestar's Prometheus middleware with its per-request work cut to a few dictionary reads.

The plugin's middleware builds a Request, a label dict and a closure for every request and
looks each metric's child up by its label values four times. Here the same metrics, with the
same names, labels and buckets (the plugin's own, created by its methods), are counted from the
ASGI scope; each (method, path template, status) finds its children once and keeps them.
Plugged in through `PrometheusConfig(middleware_class=...)`, the plugin's extension point.
"""

from __future__ import annotations

import time
from typing import Any

from litestar.plugins.prometheus import PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR


class LeanPrometheusMiddleware(PrometheusMiddleware):
    """The plugin's request metrics (`<prefix>_requests_total`, `_request_duration_seconds`,
    `_requests_in_progress`, `_requests_error_total`), for `group_path=True` and no extra labels
    or exemplars (what obesity.serving.app configures)."""

    def __init__(self, app: Any, config: Any) -> None:
        super().__init__(app, config)
        if not config.group_path or config.labels or config.exemplars or \
                config.excluded_http_methods:
            raise ValueError("LeanPrometheusMiddleware counts by path template only")
        self._app_name = config.app_name
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._in_progress: dict[tuple[str, str], Any] = {}

    def _child(self, method: str, path: str, status: int) -> tuple[Any, Any, Any]:
        """The children counting (method, path, status): requests, durations, errors."""
        key = (method, path, status)
        found = self._children.get(key)
        if found is None:
            labels = {"method": method, "path": path, "status_code": status,
                      "app_name": self._app_name}
            values = list(labels.values())
            found = self._children[key] = (
                self.request_count(labels).labels(*values), self.request_time(labels).labels(*values),
                self.requests_error_count(labels).labels(*values))
        return found

    def _progress(self, method: str, path: str) -> Any:
        found = self._in_progress.get((method, path))
        if found is None:  # the plugin labels requests in progress with status 200
            labels = {"method": method, "path": path, "status_code": 200,
                      "app_name": self._app_name}
            found = self._in_progress[(method, path)] = \
                self.requests_in_progress(labels).labels(*labels.values())
        return found

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start = time.perf_counter()
        method = scope["method"] if scope["type"] == "http" else scope["type"]
        path = scope["path_template"]
        span = {"status": 200, "duration": 0.0}

        async def counted_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                span["status"] = message["status"]
            elif message["type"] == "http.response.body":
                span["duration"] = time.perf_counter() - start
            await send(message)

        in_progress = self._progress(method, path)
        in_progress.inc()
        try:
            await self.app(scope, receive, counted_send)
        finally:
            in_progress.dec()
            count, duration, errors = self._child(method, path, int(span["status"]))
            if span["status"] >= HTTP_500_INTERNAL_SERVER_ERROR:
                errors.inc()
            count.inc()
            duration.observe(span["duration"])
