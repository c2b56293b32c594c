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

from msgspec.structs import astuple

from obesity.data.contract import CLASSES, FEATURE_NAMES, FEATURES
from obesity.errors import first_line
from obesity.serving import metrics
from obesity.serving.schema import Person
from obesity.stores import locations
from obesity.stores.traffic import PREDICTIONS, predictions_table

log = logging.getLogger(__name__)
# A Person's fields are the contract's columns in order: its tuple is the row's input values
assert Person.__struct_fields__ == tuple(FEATURE_NAMES), Person.__struct_fields__


class PredictionLog:
    """The buffer and its writer thread. A request only appends one tuple (`record`); the rows
    are spelled out and written by the thread, with the database driver's own executemany."""

    def __init__(self, url: str, flush_interval_s: float, buffer_rows: int, log_inputs: bool,
                 retention_days: float | None) -> None:
        self.url, self.flush_interval_s, self.buffer_rows = url, flush_interval_s, buffer_rows
        self.log_inputs, self.retention_days = log_inputs, retention_days
        self.dropped = 0  # rows that found the buffer full
        self.written = 0
        self._buffer: deque[tuple[Any, ...]] = deque()  # one entry per request
        self._rows = 0  # rows in the buffer
        self._lock = threading.Lock()  # the buffer
        # one flush at a time: a caller's flush returns once every row recorded before it is
        # written, also when the writer thread was writing them (POST /feedback relies on it)
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine: Any = None
        self._table: Any = None
        self._insert = ""
        self._problem: str | None = None  # the last write error, logged once
        self._file: tuple[int, int] | None = None  # the sqlite file written to (device, inode)

    def record(self, request_id: str, model: Any, rows: Sequence[Any], predictions: Sequence[Any],
               latency_ms: float) -> int:
        """Queue one answered request's rows; returns how many were dropped (buffer full)."""
        entry = (datetime.now(UTC), request_id, model.name, model.version, model.predictor.backend,
                 rows, predictions, latency_ms)
        with self._lock:
            room = self.buffer_rows - self._rows
            lost = max(0, len(rows) - room)
            if lost:
                self.dropped += lost
                entry = (*entry[:5], rows[:room], predictions[:room], latency_ms)
            if len(entry[5]):
                self._buffer.append(entry)
                self._rows += len(entry[5])
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
        """Write the buffer in one transaction; on failure the requests go back to its front
        (as many as it has room for)."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> int:
        with self._lock:
            batch, self._buffer, count, self._rows = self._buffer, deque(), self._rows, 0
        if not batch:
            return 0
        try:
            self._write(batch)
        except Exception as exc:  # gone, locked, full: retried at the next flush
            kept = self._put_back(batch)
            metrics.LOG_DROPPED.inc(count - kept)
            problem = f"{type(exc).__name__}: {first_line(exc)}"
            if problem != self._problem:
                self._problem = problem
                log.error("prediction log %s: cannot write (%s); %d row(s) kept for the next try",
                          locations.redact(self.url), problem, kept)
            return 0
        if self._problem is not None:
            log.info("prediction log %s: writing again", locations.redact(self.url))
            self._problem = None
        self.written += count
        metrics.LOG_WRITTEN.inc(count)
        return count

    def _put_back(self, batch: deque[tuple[Any, ...]]) -> int:
        with self._lock:
            kept = 0
            for entry in reversed(batch):
                if self._rows + len(entry[5]) > self.buffer_rows:
                    self.dropped += len(entry[5])
                    continue
                self._buffer.appendleft(entry)
                self._rows += len(entry[5])
                kept += len(entry[5])
        return kept

    def _write(self, batch: deque[tuple[Any, ...]]) -> None:
        if self._engine is not None and self._file_moved():
            log.warning("prediction log %s: the file was deleted or replaced while serving: "
                        "opening it anew", locations.redact(self.url))
            self._engine.dispose()
            self._engine = None
        if self._engine is None:
            self._connect()
        text_time = self._engine.dialect.name == "sqlite"  # SQLAlchemy's own sqlite format
        no_inputs = (None,) * len(FEATURES)
        rows = []
        for at, request_id, name, version, backend, inputs, answers, latency_ms in batch:
            when = at.strftime("%Y-%m-%d %H:%M:%S.%f") if text_time else at
            for row, answer in zip(inputs, answers, strict=True):
                values = astuple(row) if self.log_inputs else no_inputs
                rows.append((when, request_id, name, version, backend, *values, answer.prediction,
                             *(answer.probabilities[c] for c in CLASSES), latency_ms))
        with self._engine.begin() as connection:
            connection.exec_driver_sql(self._insert, rows)
        if self._file_moved():  # deleted meanwhile: the rows went into a file nobody can open
            raise FileNotFoundError("the file was deleted or replaced during the write; the rows "
                                    "are written again into a new file")

    def _file_moved(self) -> bool:
        """Is the sqlite file gone, or another file now (SQLite would go on writing into the
        deleted one)? Never for a server database."""
        path = locations.sqlite_path(self.url)
        if path is None:
            return False
        try:
            found = path.stat()
        except FileNotFoundError:
            return True
        return (found.st_dev, found.st_ino) != self._file

    def _connect(self) -> None:
        from sqlalchemy import MetaData, create_engine

        from obesity.stores import sqlite_tuning

        sqlite_tuning.install()  # WAL for the embedded file

        path = locations.sqlite_path(self.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(self.url, pool_pre_ping=True)
        metadata = MetaData()
        self._table = predictions_table(metadata)
        metadata.create_all(engine, checkfirst=True)
        for index in self._table.indexes:  # a log made before the index existed gets it too
            index.create(engine, checkfirst=True)
        if path is not None:
            found = path.stat()
            self._file = (found.st_dev, found.st_ino)
        columns = [c.name for c in self._table.columns if c.name != "id"]
        quote = engine.dialect.identifier_preparer.quote
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}[engine.dialect.paramstyle]
        self._insert = (f"INSERT INTO {PREDICTIONS} ({', '.join(quote(c) for c in columns)}) "
                        f"VALUES ({', '.join(marker for _ in columns)})")
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
