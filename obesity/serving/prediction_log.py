"""Every answered prediction, recorded without slowing or failing a request.

Requests append rows to a bounded in-memory buffer (never blocking: when it is full, rows are
dropped and counted); a background thread writes the buffer in one transaction every
`monitor.flush_interval_s` to the table `predictions` of `registry.prediction_log` (a sqlite
file under outputs/ by default, PostgreSQL with registry=server, so several replicas write one
log). A database that is gone or locked is retried at the next flush; the rows wait in the buffer
(up to its bound). A clean shutdown (SIGTERM, Ctrl-C) flushes everything; after kill -9 at most
the last flush interval is lost.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from obesity.data.contract import CLASSES, FEATURES, Numeric
from obesity.serving import metrics

log = logging.getLogger(__name__)
TABLE = "predictions"


def table(metadata: Any) -> Any:
    """The log's table: when, which request and model, the 16 inputs, the answer, the latency."""
    from sqlalchemy import Column, DateTime, Float, Integer, String, Table

    inputs = [Column(c.name, Float if isinstance(c, Numeric) else String(40), nullable=True)
              for c in FEATURES]
    return Table(
        TABLE, metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False, index=True),
        Column("request_id", String(128), nullable=False, index=True),
        Column("model_name", String(200), nullable=False),
        Column("model_version", String(20), nullable=False),
        Column("backend", String(10), nullable=False),
        *inputs,
        Column("prediction", String(40), nullable=False),
        *[Column(f"p_{name}", Float, nullable=False) for name in CLASSES],
        Column("latency_ms", Float, nullable=False),
    )


class PredictionLog:
    """The buffer and its writer thread; `record` is all a request does."""

    def __init__(self, url: str, flush_interval_s: float, buffer_rows: int, log_inputs: bool,
                 retention_days: float | None) -> None:
        self.url, self.flush_interval_s, self.buffer_rows = url, flush_interval_s, buffer_rows
        self.log_inputs, self.retention_days = log_inputs, retention_days
        self.dropped = 0  # rows that found the buffer full (the /metrics counter reads it)
        self.written = 0
        self._buffer: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine: Any = None
        self._table: Any = None
        self._problem: str | None = None  # the last write error, logged once

    def record(self, request_id: str, model: Any, rows: Sequence[Any], predictions: Sequence[Any],
               latency_ms: float) -> int:
        """Queue one answered request's rows; returns how many were dropped (buffer full)."""
        at = datetime.now(UTC)
        entries = []
        for row, answer in zip(rows, predictions, strict=True):
            entry: dict[str, Any] = {
                "at": at, "request_id": request_id, "model_name": model.name,
                "model_version": model.version, "backend": model.predictor.backend,
                "prediction": answer.prediction, "latency_ms": latency_ms,
                **{f"p_{name}": answer.probabilities[name] for name in CLASSES}}
            if self.log_inputs:
                entry |= {c.name: getattr(row, c.name) for c in FEATURES}
            entries.append(entry)
        with self._lock:
            room = max(0, self.buffer_rows - len(self._buffer))
            self._buffer.extend(entries[:room])
            lost = len(entries) - room if len(entries) > room else 0
            self.dropped += lost
        if lost:
            metrics.LOG_DROPPED.inc(lost)
        return lost

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Flush what is buffered and stop the writer (a clean shutdown loses nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()  # whatever came in while the thread was finishing
        if self._engine is not None:
            self._engine.dispose()

    def _run(self) -> None:
        self._prune()
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def flush(self) -> int:
        """Write the buffer in one transaction; on failure the rows go back to its front."""
        with self._lock:
            batch = list(self._buffer)
            self._buffer.clear()
        if not batch:
            return 0
        try:
            self._write(batch)
        except Exception as exc:  # gone, locked, full: retried at the next flush
            with self._lock:
                room = max(0, self.buffer_rows - len(self._buffer))
                kept = batch[-room:] if room else []
                self._buffer.extendleft(reversed(kept))
                self.dropped += len(batch) - len(kept)
            metrics.LOG_DROPPED.inc(len(batch) - len(kept))
            problem = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            if problem != self._problem:
                self._problem = problem
                log.error("prediction log %s: cannot write (%s); %d row(s) kept for the next try",
                          _redacted(self.url), problem, len(kept))
            return 0
        if self._problem is not None:
            log.info("prediction log %s: writing again", _redacted(self.url))
            self._problem = None
        self.written += len(batch)
        metrics.LOG_WRITTEN.inc(len(batch))
        return len(batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if self._engine is None:
            self._connect()
        with self._engine.begin() as connection:
            connection.execute(self._table.insert(), batch)

    def _connect(self) -> None:
        from sqlalchemy import MetaData, create_engine

        import obesity.stores.sqlite_tuning  # noqa: F401  (WAL for the embedded file)
        from obesity.stores import locations

        path = locations.sqlite_path(self.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(self.url, pool_pre_ping=True)
        metadata = MetaData()
        self._table = table(metadata)
        metadata.create_all(engine, checkfirst=True)
        self._engine = engine

    def _prune(self) -> None:
        """Drop rows older than `retention_days` (at start; a service runs for days at most
        between restarts, and the monitor reads windows, not history)."""
        if not self.retention_days:
            return
        with contextlib.suppress(Exception):  # an unreachable log is reported by flush()
            if self._engine is None:
                self._connect()
            cutoff = datetime.now(UTC) - timedelta(days=self.retention_days)
            with self._engine.begin() as connection:
                gone = connection.execute(self._table.delete().where(self._table.c.at < cutoff))
            log.info("prediction log: pruned %d row(s) older than %g days", gone.rowcount,
                     self.retention_days)


def _redacted(url: str) -> str:
    from obesity.stores import locations

    return locations.redact(url)
