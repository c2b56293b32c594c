"""The tables of served traffic, in the prediction log's database (sqlite by default, PostgreSQL
with registry=server): `predictions`, every answered row (written by obesity.serving.
prediction_log), and `labels`, the truth that comes back for them (obesity.feedback.store).
Defined here, below both, so that the service, the label store and the monitor read one schema.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from obesity.data.contract import CLASSES, FEATURES, Numeric
from obesity.errors import StoreError, first_line
from obesity.stores import locations

PREDICTIONS = "predictions"
LABELS = "labels"


def predictions_table(metadata: Any) -> Any:
    """When, which request and model, the 16 inputs, the answer, the latency."""
    from sqlalchemy import Column, DateTime, Float, Integer, String, Table

    inputs = [Column(c.name, Float if isinstance(c, Numeric) else String(40), nullable=True)
              for c in FEATURES]
    return Table(
        PREDICTIONS, metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False, index=True),
        # Indexed: labels (POST /feedback) find their prediction by it. The ids the service
        # makes are time-ordered, so the index grows at its end (random ids made every insert
        # a B-tree walk: scripts/bench_feedback.py measures both).
        Column("request_id", String(128), nullable=False, index=True),
        Column("model_name", String(200), nullable=False),
        Column("model_version", String(20), nullable=False),
        Column("backend", String(10), nullable=False),
        *inputs,
        Column("prediction", String(40), nullable=False),
        *[Column(f"p_{name}", Float, nullable=False) for name in CLASSES],
        Column("latency_ms", Float, nullable=False),
    )


def labels_table(metadata: Any) -> Any:
    """A label per logged prediction row (`prediction_id`: predictions.id); a replaced label
    stays with its `replaced_at`, and at most one label per row is current (a partial unique
    index: two writers racing on one row cannot both win)."""
    from sqlalchemy import Column, DateTime, Index, Integer, String, Table

    labels = Table(
        LABELS, metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("prediction_id", Integer, nullable=False, index=True),
        Column("request_id", String(128), nullable=False),
        Column("row", Integer, nullable=False),
        Column("label", String(40), nullable=False),
        Column("source", String(200), nullable=False),  # http, or the file it came from
        Column("replaced_at", DateTime(timezone=True), nullable=True),
    )
    current = labels.c.replaced_at.is_(None)
    Index("ix_labels_current", labels.c.prediction_id, unique=True,
          sqlite_where=current, postgresql_where=current)
    return labels


@contextlib.contextmanager
def reading(url: str, table: str) -> Iterator[Any]:
    """An engine on the log at `url` to read `table` from, or None when the log or the table
    does not exist yet (nothing was served or labelled: connecting would create the file).
    StoreError naming the log for a folder in the file's place or any database error."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.exc import SQLAlchemyError

    source = locations.redact(url)
    path = locations.sqlite_path(url)
    if path is not None and path.exists() and not path.is_file():
        raise StoreError(f"prediction log {source}: {path} is not a file (a folder in its place?)")
    if path is not None and not path.exists():
        yield None
        return
    engine = create_engine(url)
    try:
        yield engine if inspect(engine).has_table(table) else None
    except SQLAlchemyError as exc:  # unreachable, refused, not a prediction log
        raise StoreError(f"prediction log {source}: {first_line(exc)}") from None
    finally:
        engine.dispose()
