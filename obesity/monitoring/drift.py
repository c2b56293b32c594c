"""Drift of a window of traffic from the reference (the served version's training split), judged
by Evidently: a drift test per input column, the share of drifted columns, and the drift of the
predicted classes. Our code only picks the columns and reads Evidently's verdicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from obesity.data.contract import Numeric, column
from obesity.environment import quiet_libraries

PREDICTION = "prediction"  # the predicted class, beside the inputs in both data sets
SNAPSHOT, REPORT = "snapshot.json", "report.html"  # what a check that reaches a verdict writes


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    test: str  # Evidently's name of the test, e.g. "Wasserstein distance (normed)"
    score: float  # the test's statistic: a distance (drift when >= threshold) or a p-value
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class Drift:
    dataset_drift: bool  # the share of drifted input columns reached monitor.drift_share
    drift_share: float
    columns: list[ColumnDrift]  # the inputs, in contract order
    prediction: ColumnDrift  # the predicted classes
    snapshot: Any  # Evidently's result (its HTML report)

    @property
    def drifted(self) -> bool:
        return self.dataset_drift or self.prediction.drifted

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def summary(self) -> dict[str, Any]:
        return {"dataset_drift": self.dataset_drift, "drift_share": self.drift_share,
                "drifted_columns": self.drifted_columns, "prediction_drift": self.prediction.drifted,
                "columns": [asdict(c) for c in self.columns], "prediction": asdict(self.prediction)}

    def save(self, out_dir: Path, html: bool) -> None:
        """`snapshot.json` (Evidently's whole result: `Snapshot.load(path).save_html(...)` renders
        the report from it) and, with `html`, that report as `report.html`."""
        (out_dir / SNAPSHOT).write_text(self.snapshot.dumps(), encoding="utf-8")
        if html:
            self.snapshot.save_html(str(out_dir / REPORT))


def detect(reference: pd.DataFrame, current: pd.DataFrame, inputs: list[str], monitor: Any) -> Drift:
    """Evidently's DataDriftPreset on `inputs` and a ValueDrift of the predicted class.
    Both frames hold the `inputs` and a `prediction` column."""
    quiet_libraries()  # before Evidently is imported
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    numeric = [c for c in inputs if isinstance(column(c), Numeric)]
    categorical = [c for c in inputs if c not in numeric]
    definition = DataDefinition(numerical_columns=numeric,
                                categorical_columns=[*categorical, PREDICTION])
    report = Report([
        DataDriftPreset(columns=inputs, drift_share=monitor.drift_share,
                        num_method=monitor.num_method, num_threshold=monitor.num_threshold,
                        cat_method=monitor.cat_method, cat_threshold=monitor.cat_threshold),
        ValueDrift(column=PREDICTION, method="jensenshannon",
                   threshold=monitor.prediction_threshold),
    ], include_tests=True)
    def data(frame: pd.DataFrame) -> Any:
        return Dataset.from_pandas(frame[[*inputs, PREDICTION]].reset_index(drop=True),
                                   data_definition=definition)
    snapshot = report.run(current_data=data(current), reference_data=data(reference))
    return _read(snapshot, inputs)


def _read(snapshot: Any, inputs: list[str]) -> Drift:
    """Evidently's verdicts: each ValueDrift metric (column, method, threshold, score) and the
    test bound to it (FAIL = drifted); the DriftedColumnsCount metric and its share test."""
    from obesity.compat.evidently_stattests import display_name

    result = snapshot.dict()
    failed = {t["metric_config"]["metric_id"] for t in result["tests"]
              if str(getattr(t["status"], "value", t["status"])) == "FAIL"}
    columns: dict[str, ColumnDrift] = {}
    share, dataset_drift = 0.0, False
    for metric in result["metrics"]:
        config, value = metric["config"], metric["value"]
        kind = config["type"].rsplit(":", 1)[-1]
        if kind == "DriftedColumnsCount":
            share, dataset_drift = float(value["share"]), metric["id"] in failed
        elif kind == "ValueDrift":
            name = config["column"]
            numeric = name != PREDICTION and isinstance(column(name), Numeric)
            test = display_name(config["method"], numeric)
            columns[name] = ColumnDrift(name, test, float(value), float(config["threshold"]),
                                        metric["id"] in failed)
    return Drift(dataset_drift, share, [columns[c] for c in inputs], columns[PREDICTION], snapshot)
