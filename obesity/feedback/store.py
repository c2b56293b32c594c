"""Labels for served predictions: the table `labels` beside the prediction log, and how labels
get in (checked, all or nothing) and out (joined to the rows they label).

A label names a request by its id (the `X-Request-ID` of the prediction's answer) and a row of
it (0 for /predict, the row's index for a batch or CSV file). It is stored with the id of the
logged prediction it labels, so reading labelled rows is a join on a primary key. A second label
for the same row is refused unless the caller replaces the first; the first stays, marked
`replaced_at` (the history is kept; at most one label per row is current, enforced by a partial
unique index, so two writers racing on one row cannot both win).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from obesity.data.contract import CLASSES
from obesity.errors import ObesityError, StoreError, first_line
from obesity.stores import locations
from obesity.stores.traffic import LABELS, PREDICTIONS, labels_table, predictions_table, reading

MAX_NAMED = 5  # ids or rows named in one refusal; the count says how many there are


@dataclass(frozen=True)
class Label:
    request_id: str
    label: str
    row: int = 0


@dataclass(frozen=True)
class Stored:
    stored: int
    replaced: int


class LabelsRefused(ObesityError):
    """Labels the store will not take, with the HTTP status that says why (400 bad label, 404
    unknown request or row, 409 already labelled). Nothing of the batch was stored."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def check_labels(labels: Sequence[Label], where: Sequence[str]) -> None:
    """LabelsRefused (400) naming every label that is not a class of the contract, and every
    row index that is negative; `where[i]` says where label i came from (a field, a line)."""
    bad = [f"{w}: {lab.label!r} is not a class" for lab, w in zip(labels, where, strict=True)
           if lab.label not in CLASSES]
    bad += [f"{w}: row {lab.row} is negative" for lab, w in zip(labels, where, strict=True)
            if lab.row < 0]
    if bad:
        raise LabelsRefused(400, f"{len(bad)} bad label(s): {'; '.join(bad[:MAX_NAMED])}"
                                 + (f" and {len(bad) - MAX_NAMED} more" if len(bad) > MAX_NAMED
                                    else "") + f"; the classes: {', '.join(CLASSES)}")


class LabelStore:
    """The labels table of the prediction log at `url` (created on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Any = None
        self._labels: Any = None
        self._predictions: Any = None

    def _connect(self) -> None:
        from sqlalchemy import MetaData, create_engine, inspect

        from obesity.stores import sqlite_tuning

        sqlite_tuning.install()  # WAL for the embedded file
        nothing = LabelsRefused(404, f"no prediction is logged in {locations.redact(self.url)} "
                                     "yet, so no label can name one")
        path = locations.sqlite_path(self.url)
        if path is not None and not path.is_file():
            raise nothing
        engine = create_engine(self.url, pool_pre_ping=True)
        metadata = MetaData()
        self._predictions = predictions_table(metadata)
        self._labels = labels_table(metadata)
        if not inspect(engine).has_table(PREDICTIONS):
            engine.dispose()
            raise nothing
        self._labels.create(engine, checkfirst=True)
        self._engine = engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def add(self, labels: Sequence[Label], replace: bool = False, source: str = "http",
            where: Sequence[str] | None = None) -> Stored:
        """Store `labels` in one transaction, or none of them (LabelsRefused: which and why).
        `where[i]` names label i in refusals (default `labels[i]`)."""
        from sqlalchemy import select, update
        from sqlalchemy.exc import IntegrityError, SQLAlchemyError

        where = where if where is not None else [f"labels[{i}]" for i in range(len(labels))]
        check_labels(labels, where)
        seen: dict[tuple[str, int], str] = {}
        twice = []
        for lab, w in zip(labels, where, strict=True):
            key = (lab.request_id, lab.row)
            if key in seen:
                twice.append(f"{w} (as {seen[key]})")
            seen.setdefault(key, w)
        if twice:
            raise LabelsRefused(409, f"the same request row is labelled twice in this batch: "
                                     f"{', '.join(twice[:MAX_NAMED])}")
        try:
            if self._engine is None:
                self._connect()
            p, lab_t = self._predictions, self._labels
            now = datetime.now(UTC)
            with self._engine.begin() as connection:
                rows_of: dict[str, list[int]] = defaultdict(list)
                ids = sorted({lab.request_id for lab in labels})
                for chunk in _chunks(ids):
                    for pid, rid in connection.execute(
                            select(p.c.id, p.c.request_id).where(p.c.request_id.in_(chunk))):
                        rows_of[rid].append(pid)
                prediction_ids = []
                missing = []
                for lab, w in zip(labels, where, strict=True):
                    found = sorted(rows_of.get(lab.request_id, ()))
                    if lab.row < len(found):
                        prediction_ids.append(found[lab.row])
                    elif not found:
                        missing.append(f"{w}: no prediction with request id {lab.request_id!r}")
                    else:
                        missing.append(f"{w}: request {lab.request_id!r} has {len(found)} row(s), "
                                       f"no row {lab.row}")
                if missing:
                    raise LabelsRefused(404, f"{len(missing)} label(s) name no logged "
                                             f"prediction: {'; '.join(missing[:MAX_NAMED])}"
                                             + (f" and {len(missing) - MAX_NAMED} more"
                                                if len(missing) > MAX_NAMED else ""))
                labelled = {}
                for chunk in _chunks(prediction_ids):
                    labelled.update(connection.execute(
                        select(lab_t.c.prediction_id, lab_t.c.label)
                        .where(lab_t.c.prediction_id.in_(chunk), lab_t.c.replaced_at.is_(None))).all())
                if labelled and not replace:
                    named = [f"{w} (request {lab.request_id!r} row {lab.row}: "
                             f"{labelled[pid]!r})"
                             for lab, w, pid in zip(labels, where, prediction_ids, strict=True)
                             if pid in labelled]
                    raise LabelsRefused(409, f"{len(named)} row(s) have a label already: "
                                             f"{', '.join(named[:MAX_NAMED])}; send them again "
                                             "with replace to replace it (the old one is kept "
                                             "in the history)")
                for chunk in _chunks(list(labelled)):
                    connection.execute(update(lab_t).where(
                        lab_t.c.prediction_id.in_(chunk), lab_t.c.replaced_at.is_(None))
                        .values(replaced_at=now))
                connection.execute(lab_t.insert(), [
                    {"at": now, "prediction_id": pid, "request_id": lab.request_id,
                     "row": lab.row, "label": lab.label, "source": source[:200]}
                    for lab, pid in zip(labels, prediction_ids, strict=True)])
        except IntegrityError:  # another writer labelled one of these rows meanwhile
            raise LabelsRefused(409, "a row of this batch was labelled by another request "
                                     "meanwhile; nothing stored: send it again (with replace "
                                     "to replace that label)") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"prediction log {locations.redact(self.url)}: cannot store "
                             f"labels: {first_line(exc)}") from None
        return Stored(len(labels), len(labelled))


def _chunks(values: list[Any], size: int = 500) -> list[list[Any]]:
    """Bounded IN lists (sqlite's variable limit, PostgreSQL's plan size)."""
    return [values[i:i + size] for i in range(0, len(values), size)]


def labelled_rows(url: str, model_name: str, rows: int | None = None,
                  since_hours: float | None = None) -> Any:
    """The labelled predictions of `model_name` (the last `rows` of them, of the last
    `since_hours` hours), oldest first: prediction id, time, model version, the 16 inputs (None
    when not logged), the served prediction and the current label. Empty when nothing is
    labelled yet (or nothing logged)."""
    import pandas as pd
    from sqlalchemy import MetaData, select

    from obesity.data.contract import FEATURE_NAMES

    columns = ["prediction_id", "at", "model_version", *FEATURE_NAMES, "prediction", "label"]
    with reading(url, LABELS) as engine:
        if engine is None:
            return pd.DataFrame(columns=columns)
        metadata = MetaData()
        p, lab = predictions_table(metadata), labels_table(metadata)
        query = (select(p.c.id.label("prediction_id"), p.c.at, p.c.model_version,
                        *(p.c[c] for c in FEATURE_NAMES), p.c.prediction, lab.c.label)
                 .join_from(lab, p, lab.c.prediction_id == p.c.id)
                 .where(lab.c.replaced_at.is_(None), p.c.model_name == model_name))
        if since_hours is not None:
            from datetime import timedelta

            query = query.where(p.c.at >= datetime.now(UTC) - timedelta(hours=since_hours))
        query = query.order_by(p.c.id.desc())
        if rows is not None:
            query = query.limit(rows)
        with engine.connect() as connection:
            frame = pd.read_sql(query, connection)
    frame.columns = [str(c) for c in frame.columns]
    return frame.iloc[::-1].reset_index(drop=True)
