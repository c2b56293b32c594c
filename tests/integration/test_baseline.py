"""The BMI rule (model=bmi_rule) and the order-aware scores, on the real data."""

from __future__ import annotations

import pytest

from obesity.data.contract import CLASSES
from tests.helpers import compose_serve, compose_train


def test_bmi_rule_trains_logs_and_scores_like_any_model(tmp_path):
    from obesity.training import job as training

    result = training.run(compose_train(["model=bmi_rule", "cv_folds=2"], tmp_path))
    m = result.metrics
    # the label's own definition: high but not perfect (the generated rows blur the edges)
    assert 0.88 < m["test_accuracy"] < 0.97 and 0.88 < m["cv_accuracy_mean"] < 0.97
    assert set(result.model.classes_) == set(CLASSES)
    assert result.model.predict_proba(result_rows()).sum(axis=1).tolist() == [1.0, 1.0]


def result_rows():
    from obesity.data.split import split_of

    _, split = split_of(compose_train([]).data)
    return split.X_test.head(2)


def test_bmi_rule_registers_and_serves_like_any_model(tmp_path):
    from litestar.testing import TestClient

    from obesity.serving.app import create_app
    from tests.helpers import mlflow_client, register

    promoted = register(tmp_path, ["model=bmi_rule"])
    assert promoted.champion == "1"
    tags = mlflow_client(tmp_path).get_model_version("obesity_full", "1").tags
    assert float(tags["margin_over_baseline"]) == pytest.approx(0.0, abs=1e-9)  # it IS the baseline
    rows = result_rows()
    cfg = compose_serve(tmp_path)
    with TestClient(app=create_app(cfg)) as client:
        info = client.get("/model").json()
        assert info["backend"] == ("onnx" if tags["onnx"] == "verified" else "sklearn")
        answer = client.post("/predict/batch", json={"rows": rows.to_dict(orient="records")}).json()
    from obesity.model.baseline import rule_pipeline

    expected = rule_pipeline().fit(rows).predict(rows)
    assert [a["prediction"] for a in answer["predictions"]] == list(expected)
