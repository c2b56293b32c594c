"""The one training run: fit a configured pipeline, cross-validate it, record it in MLflow.

Every entrypoint calls `run`: the CLI (`python -m obesity.train`, one run or one sweep trial),
the Python API (`obesity.fit`), the DVC stage and the refit at promotion.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import threadpool_limits

from obesity.compat import hydra_ray_launcher
from obesity.config import checks as config_checks
from obesity.config.schemas import TrainConfig
from obesity.data.load import Dataset
from obesity.data.split import Split, check_folds, split_of
from obesity.stores import owner

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from obesity.model.evaluate import Scores

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What one training run produced."""

    run_id: str
    metrics: dict[str, float]
    objective: float
    # the pipeline fitted on the whole train split; None when neither evaluate_test nor log_model
    # asked for that fit (sweep trials: CV only)
    model: Pipeline | None
    timings: dict[str, float] = field(default_factory=dict)
    model_uri: str | None = None  # where the fitted pipeline was logged, if it was
    pruned: bool = False  # a sweep's pruner stopped the CV: `objective` is over `folds` folds
    folds: int = 0  # CV folds fitted


def native_threads(cfg: TrainConfig) -> int:
    """The native threads (OpenMP, BLAS) one run may use: `threads` when set, else the cores
    divided by the runs the launcher runs at once. HistGradientBoosting takes every core by
    default: two such runs at once on 2 cores fought over them, each many times slower."""
    if cfg.threads:
        return int(cfg.threads)
    cores, workers = os.cpu_count() or 1, 1
    if HydraConfig.initialized():
        launcher = HydraConfig.get().launcher
        if "joblib" in str(launcher.get("_target_", "")):
            n_jobs = int(launcher.get("n_jobs") or 1)
            workers = cores if n_jobs < 0 else n_jobs
    return max(1, cores // workers)


def preflight(cfg: TrainConfig) -> None:
    """What every run of `cfg` would refuse, checked once before a sweep starts (an
    ObesityError naming the key, the file or the class): its values, its data and split, its
    folds, its estimator's parameters. Without it each trial would fail alike, recorded as a
    FAILED run."""
    config_checks.check(cfg)
    dataset, split = split_of(cfg.data, exclude=cfg.data.exclude)
    check_folds(dataset, split, cfg.cv_folds)
    from obesity.model import pipeline

    pipeline.build(cfg)


def run(cfg: TrainConfig, overrides: list[str] | None = None, parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        on_fold: Callable[[int, float], bool] | None = None,
        cv_of: str | None = None, imported_s: float = 0.0) -> TrainResult:
    """Train, evaluate and record one configuration. The single code path of every entrypoint.

    Four steps: the data (checked before anything heavy loads), the fit and its CV, the scores
    on the held-out rows, the record in MLflow.
    `parent_run_id` nests the run under a sweep's parent run; `tags` are added to the run's.
    `on_fold(fold, objective so far)` (a sweep trial with a pruner): called after each CV fold,
    True stops the run there; it ends FINISHED, tagged `pruned`, with the folds' scores.
    `cv_of`: the run whose resolved config `cfg` is (a refit's): its recorded CV is reused when
    it is this CV (training.cv_record), and the run is tagged `cv_of` with its id.
    `imported_s`: what the entrypoint spent importing before it called (its time table).
    """
    config_checks.check(cfg)  # ranges and references, before anything is read or opened
    timings: dict[str, float] = {}
    with _timed(timings, "data"):  # a bad file fails here, before sklearn and mlflow load
        dataset, split = split_of(cfg.data, exclude=cfg.data.exclude)
        check_folds(dataset, split, cfg.cv_folds)
    with _timed(timings, "imports"):
        import mlflow

        from obesity.model import pipeline
        from obesity.stores import tracking
    timings["imports"] += imported_s
    model = pipeline.build(cfg)  # estimator parameters checked before any store is opened

    with _timed(timings, "store"):  # cold: creates the sqlite store (migrations)
        experiment_id = tracking.setup(cfg.registry)
        active = mlflow.start_run(experiment_id=experiment_id, run_name=cfg.run_name,
                                  tags=_run_tags(cfg, dataset, split, tags),
                                  parent_run_id=parent_run_id)
    with active:
        with _timed(timings, "store"):
            mlflow.log_params(_run_params(cfg, dataset, split, overrides))
        with _timed(timings, "fit_cv"):
            cv = _fit(cfg, model, split, dataset.md5, on_fold, cv_of)
        with _timed(timings, "logging"):
            metrics, confusions, test = _score(cfg, model, split, cv)
            model_uri = _record(cfg, model, split, confusions, test, cv.stopped)
        # one batch (one sqlite transaction) for the scores and the phase timings
        mlflow.log_metrics(metrics | {f"time_{k}_s": v for k, v in timings.items()})

    fitted = model if (cfg.evaluate_test or cfg.log_model) and not cv.stopped else None
    return TrainResult(active.info.run_id, metrics, metrics[cfg.objective], fitted, timings,
                       model_uri, pruned=cv.stopped, folds=cv.folds)


@contextlib.contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Add the seconds the block takes to `timings[phase]`."""
    tick = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - tick


def _run_tags(cfg: TrainConfig, dataset: Dataset, split: Split,
              extra: dict[str, str] | None) -> dict[str, str]:
    """What the run is of: model, data version(s), who ran it, the code's git state."""
    from obesity.stores import tracking

    tags = {"model": cfg.model.name, "data": cfg.data.name, "data_md5": dataset.md5,
            **({"data_extra_md5": ",".join(split.extra_md5)} if split.extra_md5 else {}),
            "owner": owner.me(), **tracking.git_state(str(cfg.paths.root)), **(extra or {})}
    if cfg.trial is not None:
        tags["trial"] = str(cfg.trial)
    if node := hydra_ray_launcher.ray_node():  # a trial run as a Ray task: which node ran it
        tags["ray_node"] = node
    return tags


def _run_params(cfg: TrainConfig, dataset: Dataset, split: Split,
                overrides: list[str] | None) -> dict[str, Any]:
    """The config, flattened, and the rows the run saw."""
    from obesity.stores import tracking

    return dict(tracking.config_params(cfg)) | {
        "data.md5": dataset.md5,
        "data.rows_raw": dataset.rows_raw,
        "data.rows_dedup": dataset.rows,
        "data.rows_duplicates": dataset.duplicates_dropped,
        "data.rows_train": len(split.X_train),
        "data.rows_test": len(split.X_test),
        **({"data.extra_md5": ",".join(split.extra_md5),
            "data.rows_fresh": len(split.X_fresh)} if split.X_fresh is not None else {}),
        "overrides": shlex.join(overrides or []) or "(none)",
    }


def _fit(cfg: TrainConfig, model: Pipeline, split: Split, data_md5: str,
         on_fold: Callable[[int, float], bool] | None, cv_of: str | None) -> Scores:
    """Cross-validate on the train split (or reuse `cv_of`'s CV), then fit on all of it when the
    run scores or logs the model; within this run's share of the cores."""
    import mlflow

    from obesity.model import evaluate
    from obesity.training import cv_record

    threads = native_threads(cfg)
    mlflow.set_tag("threads", str(threads))
    with threadpool_limits(limits=threads):  # this run's share of the cores, not all of them
        cv = cv_record.reuse(cv_of, cfg.cv_folds, cfg.seed, data_md5) if cv_of else None
        if cv is None:
            report = None if on_fold is None else (
                lambda fold, running: on_fold(fold, running[cfg.objective]))
            cv = evaluate.cross_validate(model, split.X_train, split.y_train, cfg.cv_folds,
                                         cfg.seed, cfg.n_jobs, on_fold=report)
        else:
            mlflow.set_tag(cv_record.TAG, cv_of)
        cv_record.save(cv, cfg.seed, data_md5)
        if cv.stopped:  # pruned: the folds' scores are all there is; nothing else to fit
            mlflow.set_tags({"pruned": "true", "pruned_after_folds": str(cv.folds)})
        elif cfg.evaluate_test or cfg.log_model:
            model.fit(split.X_train, split.y_train)
    return cv


Confusions = dict[str, tuple[Any, str]]  # name -> (matrix, what rows it counts)


def _score(cfg: TrainConfig, model: Pipeline, split: Split,
           cv: Scores) -> tuple[dict[str, float], Confusions, Scores | None]:
    """The CV's metrics, and the fitted model's on the test split (its scores too) and the
    fresh rows."""
    from obesity.model import evaluate

    metrics = dict(cv.metrics) | {"cv_folds_fitted": float(cv.folds)}
    confusions: Confusions = {"cv": (cv.confusion, "out-of-fold (CV)")}
    test = None
    if cfg.evaluate_test and not cv.stopped:
        test = evaluate.score(model, split.X_test, split.y_test, prefix="test")
        metrics |= test.metrics
        confusions["test"] = (test.confusion, "held-out test split")
        if split.X_fresh is not None and len(split.X_fresh):  # the extra files' held-out rows
            fresh = evaluate.score(model, split.X_fresh, split.y_fresh, prefix="fresh")
            metrics |= fresh.metrics
            confusions["fresh"] = (fresh.confusion, "fresh labelled rows")
    return metrics, confusions, test


def _record(cfg: TrainConfig, model: Pipeline, split: Split, confusions: Confusions,
            test: Scores | None, stopped: bool) -> str | None:
    """Figures, the resolved config, Hydra's own record and the model, in the active run; the
    logged model's URI (None when not logged)."""
    import mlflow

    from obesity.stores import tracking

    if cfg.log_figures:
        _log_figures(cfg, split, confusions, test)
    if cfg.log_importance and test is not None:
        _log_importance(model, split, cfg.seed, f"{cfg.model.name} on {cfg.data.name}")
    mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), tracking.RESOLVED_CONFIG)
    if cfg.trial is None:  # a trial's Hydra dir stays on disk; its resolved config is logged
        _log_hydra_dir()
    return _log_model(model, split.X_train) if cfg.log_model and not stopped else None


def _log_figures(cfg: TrainConfig, split: Split, confusions: Confusions,
                 test: Scores | None) -> None:
    import mlflow

    from obesity.model import evaluate

    plt = evaluate.headless_pyplot()
    what = f"{cfg.model.name} on {cfg.data.name}"
    figures = {f"confusion_matrix_{name}.png": evaluate.confusion_figure(matrix, f"{what}: {rows}")
               for name, (matrix, rows) in confusions.items()}
    if test is not None and test.probabilities is not None and test.predicted is not None:
        truth = split.y_test.to_numpy()
        figures["pr_curves_test.png"] = evaluate.pr_curves_figure(
            truth, test.probabilities, f"{what}: precision-recall per class (test split)")
        figures["calibration_test.png"] = evaluate.calibration_figure(
            truth, test.predicted, test.probabilities, f"{what}: reliability (test split)")
    for name, figure in figures.items():
        mlflow.log_figure(figure, name)
        plt.close(figure)


def _log_importance(model: Pipeline, split: Split, seed: int, what: str) -> None:
    """Permutation importance on the test split, into the active run (table and figure)."""
    import mlflow

    from obesity.model import evaluate

    plt = evaluate.headless_pyplot()
    table = evaluate.permutation_importances(model, split.X_test, split.y_test, seed)
    figure = evaluate.importance_figure(table, f"{what}: permutation importance (test split)")
    mlflow.log_text(table.to_csv(index=False), "permutation_importance_test.csv")
    mlflow.log_figure(figure, "permutation_importance_test.png")
    plt.close(figure)


def _log_model(model: Pipeline, X_train: Any) -> str:
    import mlflow
    from mlflow.models import infer_signature

    from obesity.model.files import SKOPS_TRUSTED_TYPES
    from obesity.stores import tracking

    example = X_train.head(3)
    signature = infer_signature(X_train, model.predict(example))
    info = mlflow.sklearn.log_model(
        model, name="model", signature=signature, input_example=example,
        serialization_format="skops", skops_trusted_types=SKOPS_TRUSTED_TYPES,
        pip_requirements=tracking.model_requirements(),
    )
    return info.model_uri


def _log_hydra_dir() -> None:
    """Hydra's own record of the run (config.yaml, hydra.yaml, overrides.yaml), when it has one."""
    import mlflow

    if HydraConfig.initialized():
        # None outside a job (e.g. the refit at the end of a sweep runs in the sweep's process)
        hydra_cfg = cast(DictConfig, HydraConfig.get())  # typed HydraConf, a DictConfig at runtime
        output_dir = OmegaConf.select(hydra_cfg, "runtime.output_dir", default=None)
        hydra_dir = Path(output_dir or "/nonexistent") / ".hydra"
        if hydra_dir.is_dir():
            mlflow.log_artifacts(str(hydra_dir), "hydra")
