"""Score a whole file with one registered version: `score_file` (python -m obesity.predict).

Each chunk is read, checked (`checks`), scored by the version's sklearn pipeline or verified
ONNX twin (loaded and verified as the service loads it: `serving.predictors.load`) and written
at once, so memory holds one chunk whatever the file's size. The output is the input's columns
(minus earlier prediction columns) with the prediction and each class's probability appended,
the columns POST /predict/csv answers with; a sidecar `<output>.json` says which version scored
it, from which file, and how many rows went where.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from obesity.batch import checks, tables
from obesity.config.schemas import OnError, PredictConfig
from obesity.data.contract import CLASSES
from obesity.errors import DataError, printable
from obesity.serving.csv_table import OUTPUT_COLUMNS, PREDICTION, PROBABILITY
from obesity.serving.predictors import ServedModel

MAX_LISTED = 10  # bad rows named in the error of on_error=fail


@dataclass(frozen=True)
class Scored:
    """What a scoring run did (also the sidecar's `rows` and `files`)."""

    rows: int  # rows read, blank lines not counted
    scored: int
    rejected: int
    output: str
    rejects: str | None
    sidecar: str
    seconds: float
    model: str  # name version N (alias, backend)


def score_file(cfg: PredictConfig, source_path: Path, target_path: Path) -> Scored:
    """Score every row of `source_path` into `target_path` (CSV or Parquet, by extension);
    DataError naming the file and the bad rows' lines (on_error=fail: nothing is written)."""
    started, clock = datetime.now(UTC), time.perf_counter()
    if source_path.resolve() == target_path.resolve():
        raise DataError(f"{target_path}: the output would overwrite the input: name another file")
    source = tables.Source(source_path, cfg.chunk_rows)
    tables.file_format(target_path)  # a bad extension is said before the model is loaded
    model = _model(cfg)
    rejects_path = Path(cfg.rejects) if cfg.rejects else target_path.with_name(
        target_path.stem + ".rejects.csv")
    rejects = tables.Rejects(rejects_path, source.unit, source.columns)
    rows = scored = 0
    try:
        with tables.Target(target_path) as target, _progress(source) as bar:
            for chunk in source.chunks():
                typed, bad = checks.check(chunk)
                blank = np.zeros(len(chunk), dtype=bool)
                if bad.any():  # a blank line breaks the contract too: skipped, not rejected
                    blank[bad] = [checks.blank(row) for row in chunk[bad].itertuples(index=False)]
                    bad &= ~blank
                if bad.any():
                    _reject(chunk, bad, source, cfg.on_error, rejects)
                good = ~(bad | blank)
                target.write(_answers(chunk[good], typed[good], model))
                rows += int(good.sum() + bad.sum())
                scored += int(good.sum())
                bar.update(len(chunk))
            if rows == 0:
                raise DataError(f"{source_path}: the file has a header but no rows")
            target.commit()
        rejected = rejects.commit()
    finally:
        rejects.close()
    sidecar = target_path.with_name(target_path.name + ".json")
    done = Scored(rows, scored, rejects.count, str(target_path), str(rejected) if rejected else None,
                  str(sidecar), round(time.perf_counter() - clock, 3),
                  f"{model.name} version {model.version} ({model.alias}, {model.predictor.backend})")
    _write_sidecar(sidecar, done, model, source_path, started)
    return done


def _model(cfg: PredictConfig) -> ServedModel:
    from obesity.config.compose import sweep_command
    from obesity.registry.aliases import resolve
    from obesity.serving.predictors import load
    from obesity.stores import tracking

    client = tracking.client(cfg.registry)
    version = resolve(client, cfg.model_name, cfg.alias, cfg.version,
                      f": nothing to score with (train one: {sweep_command(cfg.data.name)})")
    return load(version, cfg.alias if cfg.version is None else f"version {cfg.version}", cfg,
                threads=os.cpu_count() or 1)


def _reject(chunk: pd.DataFrame, bad: np.ndarray, source: tables.Source, on_error: OnError,
            rejects: tables.Rejects) -> None:
    """Bad rows: each named with its problems; the run stops (fail) or they go aside (skip)."""
    rows = chunk[bad]
    listed = rows if on_error is OnError.skip else rows.iloc[:MAX_LISTED]
    positions = [source.position(int(i)) for i in listed.index]
    found = [checks.problems(row, where)
             for row, where in zip(listed.to_dict("records"), positions, strict=True)]
    said = ["; ".join(f"{e.field}: {e.message}" for e in errors) for errors in found]
    if on_error is OnError.skip:
        rejects.add(rows, positions, said)
        return
    shown = "; ".join(f"{source.unit} {where}: {what}"
                      for where, what in zip(positions, said, strict=True))
    more = f" (the first {MAX_LISTED} listed)" if len(rows) > MAX_LISTED else ""
    first, last = (source.position(int(chunk.index[i])) for i in (0, -1))
    raise DataError(f"{source.path}: {len(rows)} row(s) of {source.unit}s {first}-{last} break "
                    f"the data contract{more}: {shown}. Nothing written (on_error=skip scores "
                    "the other rows and writes these to a rejects file)")


def _answers(rows: pd.DataFrame, typed: pd.DataFrame, model: ServedModel) -> pd.DataFrame:
    """The rows as read (minus earlier prediction columns), then this model's answers."""
    kept = rows.drop(columns=[c for c in rows.columns if c in OUTPUT_COLUMNS])
    from obesity.model.evaluate import in_contract_order

    if typed.empty:
        labels, probabilities = np.array([], dtype=object), np.zeros((0, len(CLASSES)))
    else:
        labels, found = model.predictor.predict_columns(typed)
        probabilities = in_contract_order(found, model.predictor.classes)
    out = {PREDICTION: pd.Series(labels, index=rows.index, dtype=object)}
    for j, name in enumerate(CLASSES):
        out[PROBABILITY + name] = np.round(probabilities[:, j], 6)
    return pd.concat([kept, pd.DataFrame(out, index=rows.index)], axis=1)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress(source: tables.Source) -> Any:
    """A progress bar with rows/s on a terminal (stderr); nothing in a pipe or a log."""
    if not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=source.rows(), unit=" rows", unit_scale=True, file=sys.stderr,
                desc=source.path.name)


def _write_sidecar(path: Path, done: Scored, model: ServedModel, source: Path,
                   started: datetime) -> None:
    from obesity.data.load import file_md5

    record = {
        "model": {"name": model.name, "version": model.version, "alias": model.alias,
                  "run_id": model.run_id, "backend": model.predictor.backend,
                  "integrity": model.integrity.status,
                  "data_md5": model.tags.get("data_md5")},
        "input": {"path": str(source.resolve()), "md5": file_md5(source)},
        "started_at": started.isoformat(timespec="seconds"),
        **{k: v for k, v in asdict(done).items() if k not in ("sidecar", "model")},
    }
    try:
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot write: {printable(str(exc))}") from None
