"""Stage `evaluate`: score the trained pipeline once on the prepared test split.

Writes the test metrics (DVC metrics), the test predictions (DVC's confusion-matrix plot) and the
per-class scores (a DVC bar plot).
"""

from __future__ import annotations

import pandas as pd

from obesity.config.schemas import TrainConfig, feature_columns
from obesity.data.contract import CLASSES, TARGET
from obesity.model import evaluate
from obesity.model.files import load_file
from obesity.stages import MODEL_FILE, PREPARED, REPORTS, main, write_json

TEST_METRICS = ("test_accuracy", "test_f1_macro")  # per class: reports/per_class.csv


def evaluate_stage(cfg: TrainConfig) -> None:
    model = load_file(MODEL_FILE)  # skops, with the reviewed types only
    test = pd.read_csv(PREPARED / "test.csv")
    X, y = test[feature_columns(cfg.data)], test[TARGET]
    scores = evaluate.score(model, X, y, prefix="test")
    write_json(REPORTS / "metrics.json", {k: scores.metrics[k] for k in TEST_METRICS})
    predictions = pd.DataFrame({"actual": y, "predicted": scores.predicted})
    predictions.to_csv(REPORTS / "predictions.csv", index=False)
    rows = [{"class": c, **{m: scores.metrics[f"test_{m}_{c}"] for m in ("precision", "recall", "f1")}}
            for c in CLASSES]
    pd.DataFrame(rows).to_csv(REPORTS / "per_class.csv", index=False)


if __name__ == "__main__":
    main(evaluate_stage)
