"""Benchmark: how fast labels get in, and how long the monitor takes on many labelled rows.

    python scripts/bench_feedback.py [--rows 100000] [--batch 1000]

All in a tmp dir, on the embedded stores (sqlite), in one run:
1. the prediction log's own ingest rate: `--rows` rows written by its writer (obesity.serving.
   prediction_log, one request per row as /predict makes them), with the service's time-ordered
   request ids, and again with random ids (uuid4: what a client may send) to show what the
   request_id index costs each;
2. labels ingested per second through the label store (obesity.feedback.store, what POST
   /feedback/batch and `python -m obesity.feedback FILE` call) in batches of `--batch`;
   goal (issue 24): >= 5,000 labels/s;
3. `python -m obesity.monitor`'s job (obesity.monitoring.job.run: drift on its window, then
   realized performance) with `--rows` labelled rows of the served version; goal <= 15 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def logged(url: str, rows: list, answers: list, ids: list[str], version: str) -> float:
    """Write one request per row into the prediction log at `url`; its writer's seconds."""
    from obesity.serving.prediction_log import PredictionLog

    model = SimpleNamespace(name="obesity_full", version=version,
                            predictor=SimpleNamespace(backend="onnx"))
    log = PredictionLog(url, flush_interval_s=3600, buffer_rows=len(rows) + 1, log_inputs=True,
                        retention_days=None)
    for rid, row, answer in zip(ids, rows, answers, strict=True):
        log.record(rid, model, [row], [answer], 0.1)
    start = time.perf_counter()
    log.flush()
    seconds = time.perf_counter() - start
    log.stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    import msgspec
    import pandas as pd

    from obesity.config.compose import compose
    from obesity.data.contract import CLASSES, TARGET
    from obesity.feedback.store import Label, LabelStore
    from obesity.monitoring import job
    from obesity.registry import promote
    from obesity.serving.request_id import new_id
    from obesity.serving.schema import Person, RowPrediction
    from obesity.training import job as training

    tmp = Path(tempfile.mkdtemp(prefix="bench-feedback-"))  # removed at the end
    raw = compose([]).data.path
    frame = pd.read_csv(raw)
    people = frame.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
    rows = [msgspec.convert(r, Person) for r in people.drop(columns=TARGET).to_dict("records")]
    truth = people[TARGET].tolist()
    probabilities = dict.fromkeys(CLASSES, 1 / len(CLASSES))
    # served answers: the label itself for 3 rows in 5, a neighbour class for the rest
    answers = [RowPrediction(y if i % 5 < 3 else CLASSES[(CLASSES.index(y) + 1) % 7], probabilities)
               for i, y in enumerate(truth)]

    random_url = f"sqlite:///{tmp / 'random_ids.db'}"
    random_s = logged(random_url, rows, answers, [uuid.uuid4().hex for _ in rows], "1")
    print(f"prediction log, {args.rows} rows, random request ids: {random_s:.2f} s "
          f"({args.rows / random_s:,.0f} rows/s)")

    cfg = compose([f"paths.outputs={tmp}", "model.n_estimators=60", "cv_folds=2"])
    promote.register_and_promote(cfg, training.run(cfg))  # version 1: the served champion
    url = cfg.registry.prediction_log
    ids = [new_id() for _ in rows]
    ordered_s = logged(url, rows, answers, ids, "1")
    print(f"prediction log, {args.rows} rows, the service's time-ordered ids: {ordered_s:.2f} s "
          f"({args.rows / ordered_s:,.0f} rows/s; random ids take {random_s / ordered_s:.2f}x)")

    store = LabelStore(url)
    labels = [Label(rid, y) for rid, y in zip(ids, truth, strict=True)]
    start = time.perf_counter()
    for i in range(0, len(labels), args.batch):
        store.add(labels[i:i + args.batch])
    label_s = time.perf_counter() - start
    store.close()
    rate = len(labels) / label_s
    print(f"labels, {len(labels)} in batches of {args.batch}: {label_s:.2f} s ({rate:,.0f} "
          f"labels/s; {rate / (args.rows / ordered_s):.2f}x the prediction log's rate); "
          f"goal >= 5,000/s: {'met' if rate >= 5000 else 'MISSED'}")

    monitor = compose([f"paths.outputs={tmp}", f"monitor.label_window={args.rows}"], "monitor")
    start = time.perf_counter()
    check = job.run(monitor, tmp / "check")
    monitor_s = time.perf_counter() - start
    mine = check.summary["performance"]["versions"][0]
    print(f"monitor on {mine['rows']} labelled rows (+ drift on a {monitor.monitor.window}-row "
          f"window): {monitor_s:.2f} s, verdict {check.status}/{check.performance}, accuracy "
          f"{mine['scores']['accuracy']['value']:.4f} (served: 0.6000); goal <= 15 s: "
          f"{'met' if monitor_s <= 15 else 'MISSED'}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
