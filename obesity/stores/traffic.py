"""The tables of served traffic, in the prediction log's database (sqlite by default, PostgreSQL
with registry=server): `predictions`, every answered row (written by obesity.serving.
prediction_log), and `labels`, the truth that comes back for them (obesity.feedback.store).
Defined here, below both, so that the service, the label store and the monitor read one schema.
"""

from __future__ import annotations

from typing import Any

from obesity.data.contract import CLASSES, FEATURES, Numeric

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
