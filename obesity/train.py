"""`python -m obesity.train`: fit one configured pipeline, cross-validate it, record it in MLflow.

Returns the configured objective so that a Hydra sweeper can optimise it.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

import logging  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import hydra  # noqa: E402
import hydra.utils  # noqa: E402
import mlflow  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from obesity import config as _config  # noqa: E402,F401  (registers the schemas)
from obesity import data as data_io  # noqa: E402
from obesity import config_checks, evaluate, owner, pipeline, sweep_tracking, tracking  # noqa: E402
from obesity.errors import ConfigError, ObesityError  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _T_START
log = logging.getLogger("obesity.train")


@dataclass
class TrainResult:
    """What one training run produced."""

    run_id: str
    metrics: dict[str, float]
    objective: float
    model: Pipeline
    timings: dict[str, float] = field(default_factory=dict)
    model_uri: str | None = None  # where the fitted pipeline was logged, if it was


def run(cfg: DictConfig, overrides: list[str] | None = None, parent_run_id: str | None = None,
        tags: dict[str, str] | None = None) -> TrainResult:
    """Train, evaluate and record one configuration. The single code path of every entrypoint.

    `parent_run_id` nests the run under a sweep's parent run; `tags` are added to the run's.
    """
    config_checks.check(cfg)  # ranges and references, before anything is read or opened
    if cfg.objective not in evaluate.OBJECTIVES:
        raise ConfigError(f"objective={cfg.objective!r}: choose one of {', '.join(evaluate.OBJECTIVES)}")
    timings: dict[str, float] = {}
    tick = time.perf_counter()
    model = pipeline.build(cfg)  # config errors surface before any data is read
    dataset = data_io.load(cfg.data.path)
    split = data_io.split(dataset, cfg.data.test_size, cfg.data.split_seed,
                          cfg.data.stratify, cfg.data.exclude)
    data_io.check_folds(dataset, split, cfg.cv_folds)
    timings["data"] = time.perf_counter() - tick

    tick = time.perf_counter()
    experiment_id = tracking.setup(cfg.registry)
    tags = {"model": cfg.model.name, "data": cfg.data.name, "data_md5": dataset.md5,
            "owner": owner.me(), **tracking.git_state(str(cfg.paths.root)), **(tags or {})}
    if cfg.trial is not None:
        tags["trial"] = str(cfg.trial)
    with mlflow.start_run(experiment_id=experiment_id, run_name=cfg.run_name, tags=tags,
                          parent_run_id=parent_run_id) as active:
        params = tracking.config_params(cfg)
        params |= {
            "data.md5": dataset.md5,
            "data.rows_raw": dataset.rows_raw,
            "data.rows_dedup": dataset.rows,
            "data.rows_duplicates": dataset.duplicates_dropped,
            "data.rows_train": len(split.X_train),
            "data.rows_test": len(split.X_test),
            "overrides": " ".join(overrides or []) or "(none)",
        }
        mlflow.log_params(params)
        timings["store"] = time.perf_counter() - tick  # cold: creates the sqlite store (~3 s)

        tick = time.perf_counter()
        cv = evaluate.cross_validate(model, split.X_train, split.y_train, cfg.cv_folds,
                                     cfg.seed, cfg.n_jobs)
        metrics = dict(cv.metrics)
        if cfg.evaluate_test or cfg.log_model:
            model.fit(split.X_train, split.y_train)
        timings["fit_cv"] = time.perf_counter() - tick

        tick = time.perf_counter()
        confusions = {"cv": (cv.confusion, "out-of-fold (CV)")}
        if cfg.evaluate_test:
            test = evaluate.score(model, split.X_test, split.y_test, prefix="test")
            metrics |= test.metrics
            confusions["test"] = (test.confusion, "held-out test split")
        if cfg.log_figures:
            import matplotlib.pyplot as plt

            for name, (matrix, what) in confusions.items():
                figure = evaluate.confusion_figure(
                    matrix, f"{cfg.model.name} on {cfg.data.name}: {what}")
                mlflow.log_figure(figure, f"confusion_matrix_{name}.png")
                plt.close(figure)
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), tracking.RESOLVED_CONFIG)
        if cfg.trial is None:  # a trial's Hydra dir stays on disk; its resolved config is logged
            _log_hydra_dir()
        model_uri = _log_model(model, split.X_train) if cfg.log_model else None
        timings["logging"] = time.perf_counter() - tick
        # one batch (one sqlite transaction) for the scores and the phase timings
        mlflow.log_metrics(metrics | {f"time_{k}_s": v
                                      for k, v in {"imports": IMPORT_SECONDS, **timings}.items()})

    return TrainResult(active.info.run_id, metrics, metrics[cfg.objective], model, timings,
                       model_uri)


def _log_model(model: Pipeline, X_train) -> str:
    example = X_train.head(3)
    signature = infer_signature(X_train, model.predict(example))
    info = mlflow.sklearn.log_model(
        model, name="model", signature=signature, input_example=example,
        serialization_format="skops", skops_trusted_types=tracking.SKOPS_TRUSTED_TYPES,
    )
    return info.model_uri


def _log_hydra_dir() -> None:
    """Hydra's own record of the run (config.yaml, hydra.yaml, overrides.yaml), when it has one."""
    if HydraConfig.initialized():
        # None outside a job (e.g. the refit at the end of a sweep runs in the sweep's process)
        output_dir = OmegaConf.select(HydraConfig.get(), "runtime.output_dir", default=None)
        hydra_dir = Path(output_dir or "/nonexistent") / ".hydra"
        if hydra_dir.is_dir():
            mlflow.log_artifacts(str(hydra_dir), "hydra")


def _task_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


# The whitelist covers instantiate() and the logging config (handler factories).
@hydra.main(config_path=str(_config.CONFIG_DIR), config_name="train",
            execution_whitelist=_config.EXECUTION_WHITELIST)
def main(cfg: DictConfig) -> float:
    """Hydra entrypoint: one run, or one trial of a sweep."""
    try:
        sweep = sweep_tracking.current()
        result = run(cfg, overrides=_task_overrides(), parent_run_id=sweep.parent_run_id,
                     tags=sweep.tags)
    except ObesityError as exc:
        log.error("%s", exc)
        if sweep.parent_run_id is not None:
            raise  # in a sweep: the sweeper records the trial as failed and goes on (or stops)
        sys.exit(1)
    t = result.timings
    log.info(
        "run %s: %s=%.4f | imports %.1fs, data %.1fs, store %.1fs, fit+cv %.1fs, logging %.1fs",
        result.run_id, cfg.objective, result.objective, IMPORT_SECONDS,
        t["data"], t["store"], t["fit_cv"], t["logging"],
    )
    return result.objective


if __name__ == "__main__":
    main()
