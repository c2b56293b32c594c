"""The end-of-sweep summary on the parent run: trials table, best trial, Optuna plots."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def summarize(client: MlflowClient, config: DictConfig, parent_run_id: str) -> Run | None:
    """Log the sweep's summary to its parent run; return the MLflow run of the best trial."""
    study_name = config.hydra.sweeper.get("study_name")
    if study_name:
        return _summarize_study(client, config, parent_run_id, study_name)
    return _summarize_grid(client, config, parent_run_id)


def _summarize_study(client: MlflowClient, config: DictConfig, parent: str, study_name: str):
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=study_name, storage=config.hydra.sweeper.storage)
    trials = study.trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    counts = {f"trials_{s.name.lower()}": sum(t.state == s for t in trials) for s in TrialState}
    fitted, unpruned = folds_fitted(trials, config.cv_folds)
    for key, value in (counts | {"folds_fitted": fitted, "folds_without_pruning": unpruned}).items():
        client.log_metric(parent, key, value)
    log.info("study %s: %d complete, %d pruned, %d failed trials; %d CV folds fitted (%d without "
             "pruning%s)", study_name, counts["trials_complete"], counts["trials_pruned"],
             counts["trials_fail"], fitted, unpruned,
             f", {1 - fitted / unpruned:.0%} saved" if unpruned and fitted < unpruned else "")
    frame = study.trials_dataframe()
    client.log_text(parent, frame.to_csv(index=False), "sweep/trials.csv")
    if not complete:
        log.warning("study %s has no complete trial: nothing to promote", study_name)
        return None
    best = study.best_trial
    if best.value is not None:
        client.log_metric(parent, f"best_{config.objective}", best.value)
    client.set_tag(parent, "best_trial", str(best.number))
    for key, value in best.params.items():
        client.log_param(parent, f"best.{key}", str(value))
    _log_plots(client, parent, study, len(complete))
    baseline = baseline_objective(config)
    client.log_metric(parent, f"baseline_{config.objective}", baseline)
    log.info("study %s: best trial %d, %s=%.4f (%+.4f over the BMI rule's %.4f on the same rows), "
             "params %s", study_name, best.number, config.objective, best.value,
             (best.value or 0.0) - baseline, baseline, best.params)
    return best_trial_run(client, client.get_run(parent).info.experiment_id, study_name,
                          best.number)


def folds_fitted(trials: list[Any], cv_folds: int) -> tuple[int, int]:
    """CV folds the study's trials fitted (a complete trial all of them, a pruned or failed one
    those it reported), and what its complete and pruned trials would have fitted unpruned."""
    from optuna.trial import TrialState

    fitted = sum(cv_folds if t.state == TrialState.COMPLETE else len(t.intermediate_values)
                 for t in trials)
    unpruned = cv_folds * sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    return fitted, unpruned


def baseline_objective(config: DictConfig) -> float:
    """The BMI rule's score on the training split, in the sweep's objective: what a trial's CV
    score is measured against (the rule learns nothing, so its CV score is its score)."""
    from obesity.data.split import split_of
    from obesity.model.baseline import baseline_scores

    _, split = split_of(config.data)
    return baseline_scores(split.X_train, split.y_train, "cv")[config.objective.removesuffix("_mean")]


def best_trial_run(client: MlflowClient, experiment_id: str, study_name: str,
                   trial: int) -> Run | None:
    """The finished MLflow run of trial `trial` of `study_name` (whichever worker ran it)."""
    runs = client.search_runs(
        [experiment_id],
        f"tags.study = '{study_name}' and tags.trial = '{trial}' "
        "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )
    if not runs:
        log.warning("no finished MLflow run for best trial %d of %s", trial, study_name)
        return None
    return runs[0]


def _summarize_grid(client: MlflowClient, config: DictConfig, parent: str) -> Run | None:
    experiment_id = client.get_run(parent).info.experiment_id
    metric = f"metrics.{config.objective}"
    children = client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parent}' and attributes.status = 'FINISHED'",
        order_by=[f"{metric} DESC"], max_results=1000,
    )
    if not children:
        return None
    rows = [{"run_id": r.info.run_id, "run_name": r.info.run_name,
             "overrides": r.data.params.get("overrides"),
             config.objective: r.data.metrics.get(config.objective)} for r in children]
    client.log_text(parent, pd.DataFrame(rows).to_csv(index=False), "sweep/runs.csv")
    client.log_metric(parent, f"best_{config.objective}", rows[0][config.objective])
    client.set_tag(parent, "best_run", children[0].info.run_id)
    scores = "; ".join(f"{row['overrides']}: {row[config.objective]:.4f}" for row in rows)
    log.info("grid: %d runs by %s, best first: %s", len(rows), config.objective, scores)
    return children[0]


def _log_plots(client: MlflowClient, parent: str, study, n_complete: int) -> None:
    from optuna.visualization import matplotlib as ovm

    from obesity.model.evaluate import headless_pyplot

    plt = headless_pyplot()

    plots: dict[str, Callable[[Any], Any]] = {
        "sweep/optimization_history.png": ovm.plot_optimization_history}
    if n_complete >= 2:
        plots["sweep/param_importances.png"] = ovm.plot_param_importances
        plots["sweep/parallel_coordinate.png"] = ovm.plot_parallel_coordinate
        searched = sorted({name for t in study.trials for name in t.distributions})
        if len(searched) >= 2:  # every pair would be len² panels: the two most important
            plots["sweep/contour.png"] = lambda s: ovm.plot_contour(s, params=_top_two(s, searched))
    for name, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                ax = plot(study)
            except (ValueError, RuntimeError) as exc:  # e.g. importances of a constant space
                log.warning("no %s: %s", name, exc)
                continue
        # one Axes, or an array of them (the figure is the same); a Figure, not a SubFigure
        fig: Any = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(9, 5)
        fig.tight_layout()
        client.log_figure(parent, fig, name)
        plt.close(fig)


def _top_two(study: Any, searched: list[str]) -> list[str]:
    """The two parameters the study's outcome depends on most (fANOVA), else the first two."""
    import optuna

    try:
        ranked = list(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):
        ranked = []
    return (ranked + [p for p in searched if p not in ranked])[:2]
