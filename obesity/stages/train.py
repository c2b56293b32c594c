"""Stage `train`: `obesity.training.job.run`, the code path of `python -m obesity.train`, on params.yaml.

Logs to MLflow like the CLI, then keeps the fitted pipeline (skops) and the CV scores for DVC.
"""

from __future__ import annotations

from omegaconf import DictConfig

from obesity.stages import MODEL_FILE, REPORTS, main, write_json
from obesity.training import job as training

CV_METRICS = ("cv_accuracy_mean", "cv_accuracy_std", "cv_f1_macro_mean", "cv_f1_macro_std")


def train_stage(cfg: DictConfig) -> None:
    import skops.io

    result = training.run(cfg, overrides=["(dvc stage train: params.yaml)"])
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    skops.io.dump(result.model, MODEL_FILE)
    # the headline scores only (per class: MLflow); no run id, it would change on every rerun
    write_json(REPORTS / "train.json", {k: result.metrics[k] for k in CV_METRICS})
    print(f"train: MLflow run {result.run_id}")


if __name__ == "__main__":
    main(train_stage)
