"""Any version on any labelled file: `python -m obesity.registry evaluate VERSION
data.path=cohort.csv`.

The file passes the data contract like training data; the version's served answer for every row
is scored (accuracy, macro-F1, the ordinal class distance and QWK, recall per class) with
bootstrap intervals, recorded as an MLflow run of `<experiment>-evaluations` (the file as an
MLflow dataset input, its md5 and rows as tags) and summarised on the version (tags
`evaluated_*`), which `registry versions`, `registry card` and the service's page show.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from obesity.config.schemas import TrainConfig
from obesity.data.contract import TARGET
from obesity.errors import DataError

SUMMARY_TAG = "evaluated"  # "evaluated on cohort.csv (md5 …, N rows): accuracy 0.71 [0.69, 0.73], …"


@dataclass(frozen=True)
class Evaluation:
    version: str
    path: Path
    md5: str
    rows: int
    scores: dict[str, tuple[float, float, float]]  # kind -> (value, low, high)
    qwk: float
    run_id: str

    def line(self, alpha: float) -> str:
        level = f"{100 * (1 - alpha):g}%"
        said = ", ".join(f"{kind} {v:.4f} [{lo:.4f}, {hi:.4f}]"
                         for kind, (v, lo, hi) in self.scores.items()
                         if kind in ("accuracy", "f1_macro", "class_distance"))
        return (f"version {self.version} evaluated on {self.path.name} (md5 {self.md5[:8]}, "
                f"{self.rows} rows): {said} ({level} bootstrap intervals); MLflow run {self.run_id}")


def labelled_file(cfg: TrainConfig, version: ModelVersion) -> Any:
    """The labelled file `data.path` names, checked against the contract; DataError when it is
    the very file the version was trained on (its test split already says that)."""
    from obesity.data.load import load_dataset

    dataset = load_dataset(cfg.data.path)
    if dataset.md5 == version.tags.get("data_md5"):
        raise DataError(f"{cfg.data.path} is the data {version.name} version {version.version} "
                        "was trained on: its test split already scores it there; give "
                        "data.path=<a labelled file of other people>")
    return dataset


def evaluate(client: MlflowClient, cfg: TrainConfig, version: ModelVersion) -> Evaluation:
    """Score `version` on the labelled file `cfg.data.path` and record it (see module doc)."""
    import mlflow
    from sklearn.metrics import cohen_kappa_score

    from obesity.data.contract import CLASSES
    from obesity.data.load import select_features
    from obesity.model import files as model_files
    from obesity.registry import manifest
    from obesity.registry.evidence import REPORTED, scored
    from obesity.stores import tracking

    reg = cfg.registry
    dataset = labelled_file(cfg, version)
    manifest.verify_files(version, reg)  # the files scored are the ones registered
    model = model_files.load_pipeline(version.name, version.version)
    truth = dataset.frame[TARGET]
    predicted = model.predict(select_features(dataset.frame))
    scores = scored(list(truth), list(predicted), REPORTED, alpha=reg.alpha,
                    samples=reg.bootstrap_samples, seed=reg.bootstrap_seed)
    qwk = float(cohen_kappa_score(truth, predicted, labels=list(CLASSES), weights="quadratic"))

    experiment_id = tracking.setup(dataclasses.replace(reg, experiment=f"{reg.experiment}-evaluations"))
    path = Path(str(cfg.data.path))
    tags = {"model_name": version.name, "model_version": str(version.version),
            "model_run_id": version.run_id or "", "data_md5": dataset.md5,
            "data_file": str(path), "data_rows": str(dataset.rows)}
    with mlflow.start_run(experiment_id=experiment_id, tags=tags,
                          run_name=f"evaluate {version.name} v{version.version} on {path.name}") as run:
        with warnings.catch_warnings():  # MLflow registers its local-file source twice
            warnings.filterwarnings("ignore", "The specified dataset source")
            data = mlflow.data.from_pandas(dataset.frame, source=str(path.resolve()),
                                           name=path.name, targets=TARGET)
        mlflow.log_input(data, context="evaluation")
        metrics = {"rows": float(dataset.rows), "qwk": qwk}
        for kind, (value, low, high) in scores.items():
            metrics |= {kind: value, f"{kind}_low": low, f"{kind}_high": high}
        mlflow.log_metrics(metrics)
    evaluation = Evaluation(str(version.version), path, dataset.md5, dataset.rows, scores, qwk,
                            run.info.run_id)
    summary = (f"evaluated on {path.name} (md5 {dataset.md5[:8]}, {dataset.rows} rows): "
               + ", ".join(f"{kind} {v:.4f} [{lo:.4f}, {hi:.4f}]" for kind, (v, lo, hi)
                           in scores.items() if kind in ("accuracy", "f1_macro")))
    accuracy = scores["accuracy"]
    for key, value in {SUMMARY_TAG: summary, "evaluated_run_id": run.info.run_id,
                       "evaluated_on": path.name,
                       "evaluated_accuracy": "{:.4f} [{:.4f}, {:.4f}]".format(*accuracy),
                       "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds")}.items():
        client.set_model_version_tag(version.name, str(version.version), key, value)
    return evaluation
