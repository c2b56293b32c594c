"""Every run's cross-validation, logged whole, so that a refit of the same config reuses it.

A sweep's end refits its best trial from that trial's own resolved config: the same model, the
same data file, the same folds and seed. Its CV would be the trial's again, fold for fold (CV is
deterministic here; tests/integration/test_train.py checks that a config reruns to the same figures), so the
refit takes the trial's CV from this record instead of fitting every fold a second time.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from obesity.model.evaluate import Scores

log = logging.getLogger(__name__)

PATH = "cv/scores.json"  # in every run's artifacts
TAG = "cv_of"  # on a run whose CV is another run's record: that run's id


def save(cv: Scores, seed: int, data_md5: str) -> None:
    """Log `cv` (metrics, out-of-fold confusion, folds) and what it was fitted on to the active
    MLflow run."""
    import mlflow

    mlflow.log_dict({"metrics": cv.metrics, "confusion": cv.confusion.tolist(), "folds": cv.folds,
                     "stopped": cv.stopped, "seed": seed, "data_md5": data_md5}, PATH)


def reuse(run_id: str, folds: int, seed: int, data_md5: str) -> Scores | None:
    """The CV recorded by `run_id` if it is the CV these settings would fit, else None (said why).

    The caller's config must be `run_id`'s own resolved config (the refit's); what can still
    differ is checked: the data file (md5), the folds and seed, and whether every fold was fitted
    (a pruned trial's was not)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    def again(why: str) -> Scores | None:
        log.info("cross-validating again: the CV of run %s %s", run_id, why)
        return None

    try:
        record: dict[str, Any] = mlflow.artifacts.load_dict(f"runs:/{run_id}/{PATH}")
    except (MlflowException, OSError, ValueError):
        return again(f"has no {PATH} (logged before runs recorded it)")
    if record.get("data_md5") != data_md5:
        return again("was on another data file (its data_md5 differs)")
    if record["stopped"] or record["folds"] != folds or record["seed"] != seed:
        return again(f"is not this one ({record['folds']} folds fitted, seed {record['seed']}; "
                     f"now {folds} folds, seed {seed})")
    return Scores({k: float(v) for k, v in record["metrics"].items()},
                  np.asarray(record["confusion"], dtype=np.int64), folds=record["folds"])
