"""The drift report (`python -m obesity.monitor`): its window of the prediction log, Evidently's
verdicts on real data and known shifts, the exit codes, MLflow, and a retrain on drift."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from litestar.testing import TestClient

from obesity.config.compose import compose
from obesity.data.contract import CLASSES, FEATURE_NAMES
from obesity.data.split import split_of
from obesity.errors import ConfigError, DataError
from obesity.monitoring import job
from obesity.monitoring.drift import detect
from obesity.monitoring.window import read_window
from obesity.serving.app import create_app
from obesity.testing.shifts import SHIFTS, windows
from tests.helpers import (
    RAW_CSV,
    ROOT,
    compose_monitor,
    compose_serve,
    mlflow_client,
    register,
    rf_champion,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A champion (rf, 60 trees) in a tmp store: version 1."""
    return rf_champion(tmp_path_factory, "monitored")


@pytest.fixture(scope="module")
def split():
    return split_of(compose([]).data)[1]


def serve_rows(outputs: Path, frame: pd.DataFrame, *overrides: str) -> None:
    """Answer `frame` through the real service (in process), which logs every row."""
    rows = json.loads(frame.to_json(orient="records"))
    with TestClient(app=create_app(compose_serve(outputs, *overrides))) as client:
        for start in range(0, len(rows), 500):
            answer = client.post("/predict/batch", json={"rows": rows[start:start + 500]})
            assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def reference(split):
    """The training split with the labels standing in for a model's (near perfect) predictions."""
    return split.X_train.assign(prediction=split.y_train.values)


def with_predictions(window: pd.DataFrame, split) -> pd.DataFrame:
    # a window's 'predictions': classes drawn like the test labels (no model needed to judge inputs)
    rng = np.random.default_rng(len(window))
    return window.assign(prediction=rng.choice(split.y_test.to_numpy(), len(window)))


# Enough windows to bound a rate (the rule of three: 0 of N flagged bounds the rate below 3/N at
# 95%): 30 undrifted windows bound false alarms below 10%; docs/monitoring.md's "well under 5%"
# rests on scripts/bench_drift.py's 200 windows (0.0%), which would cost the suite ~2 minutes.
UNDRIFTED_WINDOWS, SHIFTED_WINDOWS = 30, 5


def test_undrifted_windows_are_not_flagged(reference, split):
    monitor = compose_monitor(ROOT / "outputs").monitor
    flagged = []
    for window in windows(split.X_test, UNDRIFTED_WINDOWS, 300, seed=11):
        drift = detect(reference, with_predictions(window, split), list(FEATURE_NAMES), monitor)
        assert len(drift.columns) == 16
        flagged += [drift.summary()] if drift.drifted else []
    assert not flagged, flagged[:1]


@pytest.mark.parametrize("shift", SHIFTS, ids=str)
def test_a_known_shift_is_flagged_and_its_column_named(reference, split, shift):
    monitor = compose_monitor(ROOT / "outputs").monitor
    moved, change = SHIFTS[shift]
    rng = np.random.default_rng(0)
    for window in windows(split.X_test, SHIFTED_WINDOWS, 300, seed=12):
        drift = detect(reference, with_predictions(change(window, rng), split), list(FEATURE_NAMES),
                       monitor)
        assert drift.dataset_drift and drift.drifted_columns == [moved], drift.summary()
        named = next(c for c in drift.columns if c.column == moved)
        assert named.score >= named.threshold and named.test  # Evidently's own test name


def write_log(url: str, rows: list[dict]) -> None:
    from sqlalchemy import MetaData, create_engine

    from obesity.stores.traffic import predictions_table as table

    engine = create_engine(url)
    metadata = MetaData()
    log = table(metadata)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(log.insert(), rows)
    engine.dispose()


def logged_row(split, i: int, model_name: str, at: datetime, inputs: bool = True) -> dict:
    features = split.X_test.iloc[i].to_dict() if inputs else dict.fromkeys(FEATURE_NAMES)
    return {"at": at, "request_id": f"r{i}", "model_name": model_name, "model_version": "1",
            "backend": "onnx", **features, "prediction": CLASSES[i % 7],
            **{f"p_{c}": 1 / 7 for c in CLASSES}, "latency_ms": 1.0}


def test_the_window_is_the_last_rows_of_the_model_in_the_time_span(split, tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    now = datetime.now(UTC)
    rows = [logged_row(split, i, "obesity_full", now - timedelta(hours=30 - i)) for i in range(30)]
    rows += [logged_row(split, 30 + i, "obesity_lifestyle", now) for i in range(5)]
    rows += [logged_row(split, 35 + i, "obesity_full", now, inputs=False) for i in range(4)]
    write_log(url, rows)
    inputs = list(FEATURE_NAMES)
    window = read_window(url, "obesity_full", 10, None, inputs)
    assert len(window) == 10 and window.without_inputs == 4
    # the newest ten, oldest first, values as logged
    pd.testing.assert_frame_equal(window.frame[inputs],
                                  split.X_test.iloc[20:30][inputs].reset_index(drop=True),
                                  check_dtype=False)
    assert list(window.frame.prediction) == [CLASSES[i % 7] for i in range(20, 30)]
    assert len(read_window(url, "obesity_full", 100, 5.5, inputs)) == 5  # hours 5..1 ago
    assert len(read_window(url, "obesity_lifestyle", 100, None, inputs)) == 5


def test_a_log_that_does_not_exist_is_an_empty_window_and_is_not_created(tmp_path):
    url = f"sqlite:///{tmp_path}/never.db"
    assert len(read_window(url, "obesity_full", 10, None, list(FEATURE_NAMES))) == 0
    assert not (tmp_path / "never.db").exists()
    with pytest.raises(ConfigError, match=r"registry\.prediction_log is not set"):
        read_window(None, "obesity_full", 10, None, list(FEATURE_NAMES))


def test_undrifted_traffic_is_no_drift_and_recorded_in_mlflow(served, split, tmp_path):
    serve_rows(served, split.X_test)  # 418 real rows through the service
    result = job.run(compose_monitor(served), tmp_path / "check")
    assert result.status == "no_drift" and result.exit_code == 0, result.summary
    summary = json.loads((tmp_path / "check" / "summary.json").read_text())
    assert summary["rows"] == 418 and summary["model_version"] == "1"
    assert {c["column"] for c in summary["columns"]} == set(FEATURE_NAMES)
    assert all({"test", "score", "threshold", "drifted"} <= set(c) for c in summary["columns"])
    client = mlflow_client(served)
    run = client.get_run(result.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "obesity-monitoring" and run.info.status == "FINISHED"
    assert run.data.tags["model_version"] == "1" and run.data.tags["drift_status"] == "no_drift"
    assert run.data.metrics["rows"] == 418 and "drift_score_Age" in run.data.metrics
    # no drift: Evidently's snapshot, not its 4 MB HTML (monitor.report=drift, the default)
    assert {a.path for a in client.list_artifacts(result.run_id)} == {"snapshot.json", "summary.json"}
    assert not (tmp_path / "check" / "report.html").exists()
    tags = client.get_model_version("obesity_full", "1").tags
    assert tags["drift_status"] == "no_drift" and tags["drift_run_id"] == result.run_id
    assert float(tags["drift_share"]) == 0 and tags["drift_checked_at"] == summary["checked_at"]

    # monitor.report=always writes the HTML too; Evidently renders that very report from the
    # snapshot.json every check keeps (the command docs/monitoring.md shows)
    from evidently.core.report import Snapshot

    again = job.run(compose_monitor(served, "monitor.report=always"), tmp_path / "always")
    written = (tmp_path / "always" / "report.html").read_text()
    assert {a.path for a in client.list_artifacts(again.run_id)} == \
        {"report.html", "snapshot.json", "summary.json"}
    Snapshot.load(tmp_path / "always" / "snapshot.json").save_html(str(tmp_path / "rendered.html"))
    # the same report but for the ids Evidently draws at each rendering
    ids = re.compile(r"metric_[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert ids.sub("id", (tmp_path / "rendered.html").read_text()) == ids.sub("id", written)
    assert all(column in written for column in FEATURE_NAMES) and len(written) > 1_000_000


def test_a_check_on_data_that_is_not_the_versions_names_the_file(tmp_path):
    copy = tmp_path / "data.csv"
    shutil.copy(RAW_CSV, copy)
    register(tmp_path, ["model=lr", f"data.path={copy}"])
    serve_rows(tmp_path, pd.read_csv(copy).drop(columns="NObeyesdad").head(250))
    copy.write_text(copy.read_text().replace("Female", "Male", 1))
    with pytest.raises(DataError, match=re.escape(f"{copy} is not the data obesity_full version 1")):
        job.run(compose_monitor(tmp_path, "monitor.min_rows=200"), tmp_path / "check")


def run_monitor(outputs: Path, *overrides: str, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "obesity.monitor", f"paths.root={ROOT}", f"paths.outputs={outputs}",
           *overrides]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_too_few_rows_exit_4_and_errors_exit_1(served, tmp_path):
    # in this process (the command line's exit codes: tests/test_feedback.py's loop exits 5)
    few = job.run(compose_monitor(served, "monitor.min_rows=5000", "monitor.window=5000"),
                  tmp_path / "few")
    assert few.exit_code == 4 and few.performance == "insufficient"
    summary = json.loads((tmp_path / "few" / "summary.json").read_text())
    assert summary["status"] == "insufficient_data" and "monitor.min_rows=5000" in summary["why"]
    none = run_monitor(tmp_path)  # a store without a champion
    assert none.returncode == 1
    assert none.stderr.strip().splitlines()[-1] == (
        "error: obesity_full has no version at alias 'champion': nothing is served to check "
        "(train one: python -m obesity.train -m sweep=rf data=full)")


@pytest.mark.slow
def test_a_retrain_that_fails_is_in_the_summary_and_the_check_exits_1(split, tmp_path):
    from obesity.errors import ObesityError

    register(tmp_path, ["model=lr"])
    _, shift = SHIFTS["FAF+1"]
    serve_rows(tmp_path, shift(windows(split.X_test, 1, 250, seed=7)[0], np.random.default_rng(0)))
    cfg = compose_monitor(tmp_path, "monitor=retrain", "monitor.retrain=['sweep=lr','cv_folds=1']")
    with pytest.raises(ObesityError, match="the retrain exited 1"):
        job.run(cfg, tmp_path / "check")
    summary = json.loads((tmp_path / "check" / "summary.json").read_text())
    assert summary["status"] == "drift" and summary["drifted_columns"] == ["FAF"]
    assert (tmp_path / "check" / "report.html").is_file()  # drift: the report to look at
    assert summary["retrain"]["exit_code"] == 1 and "cv_folds=1" in summary["retrain"]["command"]
    run = mlflow_client(tmp_path).get_run(summary["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["drift_status"] == "drift"
