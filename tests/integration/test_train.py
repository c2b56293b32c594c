"""Real training runs on the real data, recorded in a tmp MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from obesity.data.contract import CLASSES, FEATURE_NAMES, TARGET
from obesity.data.split import split_of
from obesity.errors import ConfigError, StoreError
from obesity.training import job as training
from tests.helpers import FAST, RAW_CSV, RAW_MD5, compose_train, mlflow_client


def only_run(outputs):
    client = mlflow_client(outputs)
    experiment = client.get_experiment_by_name("obesity")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


@pytest.mark.slow
def test_cli_run_is_finished_with_params_metrics_and_provenance(trained_cli):
    outputs, proc = trained_cli
    # where to look, absolute: the line works from any folder
    assert f"look: mlflow ui --backend-store-uri sqlite:///{outputs.resolve()}/mlflow.db" in proc.stderr
    client, run = only_run(outputs)
    assert run.info.status == "FINISHED"
    p, m, tags = run.data.params, run.data.metrics, run.data.tags
    assert p["model.n_estimators"] == "60" and p["model._target_"].endswith("RandomForestClassifier")
    assert p["data.path"].endswith("ObesityDataSet_raw_and_data_sinthetic.csv")
    assert p["data.md5"] == tags["data_md5"] == RAW_MD5
    assert (p["data.rows_raw"], p["data.rows_dedup"], p["data.rows_duplicates"]) == ("2111", "2087", "24")
    assert int(p["data.rows_train"]) + int(p["data.rows_test"]) == 2087
    assert "model=rf" in p["overrides"] and "cv_folds=3" in p["overrides"]
    assert len(tags["git_commit"]) == 40 or tags["git_commit"] == "unknown"
    for name in ("cv_accuracy", "cv_f1_macro"):
        assert 0.5 < m[f"{name}_mean"] <= 1 and 0 <= m[f"{name}_std"] < 0.1
    assert 0.5 < m["test_f1_macro"] <= 1
    for cls in CLASSES:
        assert {f"cv_precision_{cls}", f"cv_recall_{cls}", f"cv_f1_{cls}", f"test_f1_{cls}"} <= set(m)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix_cv.png", "confusion_matrix_test.png", "pr_curves_test.png",
            "calibration_test.png", "config", "hydra"} <= artifacts
    assert "permutation_importance_test.png" not in artifacts  # seconds: off for a plain run
    resolved = client.download_artifacts(run.info.run_id, "config/resolved.yaml", str(outputs))
    assert "n_estimators: 60" in Path(resolved).read_text()


@pytest.mark.slow
def test_logged_model_predicts_class_names_from_raw_rows(trained_cli):
    outputs, _ = trained_cli
    _, run = only_run(outputs)
    mlflow.set_tracking_uri(f"sqlite:///{outputs}/mlflow.db")
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert [c.name for c in model.metadata.get_input_schema().inputs] == list(FEATURE_NAMES)
    raw = pd.read_csv(RAW_CSV).sample(25, random_state=0)
    predicted = model.predict(raw.drop(columns=[TARGET]))
    assert set(predicted) <= set(CLASSES)
    assert (predicted == raw[TARGET].to_numpy()).mean() > 0.8
    # the same model through the sklearn flavour is the whole Pipeline
    pipeline = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert list(pipeline.named_steps) == ["bmi", "encode", "model"]
    # the logged calibration figures are those of this model on the test split
    _, split = split_of(compose_train(["model=rf", *FAST], outputs).data)
    probabilities = pipeline.predict_proba(split.X_test)
    assert run.data.metrics["test_log_loss"] == pytest.approx(
        log_loss(split.y_test, probabilities, labels=pipeline.classes_), rel=1e-9)
    confidence = probabilities.max(axis=1).mean()
    right = (pipeline.predict(split.X_test) == split.y_test).mean()
    assert abs(confidence - right) <= run.data.metrics["test_ece"] + 1e-12  # ECE >= |mean gap|
    assert run.data.metrics["test_ece"] < 0.2


@pytest.mark.slow
def test_in_process_run_reproduces_the_cli_metrics_exactly(trained_cli, tmp_path):
    cli_outputs, _ = trained_cli
    _, cli_run = only_run(cli_outputs)
    result = training.run(compose_train(["model=rf", *FAST, "log_model=false",
                                         "log_importance=true"], tmp_path))
    assert result.metrics == pytest.approx(
        {k: cli_run.data.metrics[k] for k in result.metrics}, abs=0, rel=0
    )
    assert result.objective == result.metrics["cv_f1_macro_mean"]
    # asked for: permutation importance on the test split; the labels are BMI classes, so
    # shuffling Weight costs the most
    client = mlflow_client(tmp_path)
    table = pd.read_csv(client.download_artifacts(result.run_id, "permutation_importance_test.csv",
                                                  str(tmp_path)))
    assert sorted(table["column"]) == sorted(FEATURE_NAMES)
    assert table["column"].iloc[0] == "Weight" and table["mean"].iloc[0] > 0.3
    assert "permutation_importance_test.png" in {a.path for a in client.list_artifacts(result.run_id)}


@pytest.mark.slow
def test_another_seed_gives_other_cv_metrics(trained_cli, tmp_path):
    _, cli_run = only_run(trained_cli[0])
    result = training.run(compose_train(["model=rf", *FAST, "seed=7", "log_model=false",
                                      "evaluate_test=false"], tmp_path))
    assert result.metrics["cv_f1_macro_mean"] != cli_run.data.metrics["cv_f1_macro_mean"]
    assert not any(k.startswith("test_") for k in result.metrics)


def test_lifestyle_model_is_signed_on_fourteen_raw_columns(tmp_path):
    result = training.run(compose_train(["model=lr", "data=lifestyle", "cv_folds=3"], tmp_path))
    _, run = only_run(tmp_path)
    assert run.info.status == "FINISHED"
    model = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    names = [c.name for c in model.metadata.get_input_schema().inputs]
    assert names == [c for c in FEATURE_NAMES if c not in ("Height", "Weight")]
    assert list(result.model.named_steps) == ["encode", "model"]


def test_objective_must_be_a_cv_metric(tmp_path):
    with pytest.raises(ConfigError, match="objective='test_f1_macro'"):
        training.run(compose_train(["objective=test_f1_macro"], tmp_path))
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("broken", ["folder", "not_sqlite"])
def test_a_store_that_cannot_be_opened_fails_at_once_naming_the_file(tmp_path, broken):
    """MLflow would retry such a store for ~100 s and end in a traceback without the path."""
    store = tmp_path / "mlflow.db"
    if broken == "folder":
        store.mkdir()
    else:
        store.write_bytes(b"not a database " * 100)
    with pytest.raises(StoreError, match=f"cannot open the MLflow store {store}: "):
        training.run(compose_train(["model=lr", "cv_folds=2"], tmp_path))


def test_overrides_with_spaces_survive_the_logged_param(tmp_path):
    """A run's `overrides` param is what a refit parses back: quoted, not split on spaces."""
    from obesity.registry import promote

    data = tmp_path / "my  data.csv"
    data.write_bytes(RAW_CSV.read_bytes())
    overrides = ["model=lr", f"data.path={data}", "cv_folds=2", "log_model=false"]
    result = training.run(compose_train(overrides, tmp_path), overrides=overrides)
    run = mlflow_client(tmp_path).get_run(result.run_id)
    assert promote.split_overrides(run.data.params["overrides"]) == overrides


def test_the_returned_model_is_fitted_or_none(tmp_path):
    from sklearn.utils.validation import check_is_fitted

    fitted = training.run(compose_train(["model=lr", "cv_folds=2", "log_model=false"], tmp_path))
    check_is_fitted(fitted.model)  # evaluate_test needed the fit
    cv_only = training.run(compose_train(["model=lr", "cv_folds=2", "log_model=false",
                                          "evaluate_test=false"], tmp_path))
    assert cv_only.model is None  # never an unfitted pipeline posing as the model


def test_a_refit_reuses_its_runs_cv_only_when_it_is_the_same_cv(tmp_path, monkeypatch):
    """A refit (`cv_of`, a sweep's end) takes the run's recorded CV: its figures, no fold fitted
    again. Another data file, other folds or a seed, or a pruned run's partial CV are fitted."""
    from obesity.model import evaluate
    from obesity.training import cv_record

    base = ["model=lr", "cv_folds=2", "log_model=false", "evaluate_test=false"]
    first = training.run(compose_train(base, tmp_path))
    cv = {k: v for k, v in first.metrics.items() if k.startswith("cv_")}
    client = mlflow_client(tmp_path)
    fit_cv = evaluate.cross_validate

    def refused(*args, **kwargs):
        raise AssertionError("the refit fitted its CV again")

    monkeypatch.setattr(evaluate, "cross_validate", refused)
    reused = training.run(compose_train(base, tmp_path), cv_of=first.run_id)
    assert {k: reused.metrics[k] for k in cv} == cv
    assert client.get_run(reused.run_id).data.tags[cv_record.TAG] == first.run_id
    monkeypatch.setattr(evaluate, "cross_validate", fit_cv)

    # the same rows in a file with other bytes: fitted again, to exactly the recorded figures
    copy = tmp_path / "copy.csv"
    copy.write_bytes(RAW_CSV.read_bytes() + b"\n")
    refit = training.run(compose_train([*base, f"data.path={copy}"], tmp_path), cv_of=first.run_id)
    assert {k: refit.metrics[k] for k in cv} == cv
    for changed in ([*base[:1], "cv_folds=3", *base[2:]], [*base, "seed=7"]):
        other = training.run(compose_train(changed, tmp_path), cv_of=first.run_id)
        assert other.metrics["cv_f1_macro_mean"] != cv["cv_f1_macro_mean"]
    pruned = training.run(compose_train(base, tmp_path), on_fold=lambda fold, score: True)
    assert pruned.pruned and pruned.folds == 1
    after_pruned = training.run(compose_train(base, tmp_path), cv_of=pruned.run_id)
    assert after_pruned.folds == 2 and after_pruned.metrics == pytest.approx(first.metrics, abs=0)
    for result in (refit, other, after_pruned):
        assert cv_record.TAG not in client.get_run(result.run_id).data.tags
