"""Fold-level pruning inside a sweep trial: the job finds its own trial in the study storage.

No Hydra sweeper hands the trial to the job (Hydra issues #1710, #1954); ours tags every job with
`trial=<number>` and keeps the study in a storage every worker reaches, so the job opens the
study with the configured pruner, reports its running CV score after each fold and asks whether
to stop. The sweeper then tells the study PRUNED (obesity/sweep/study.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig

from obesity.config.schemas import TrainConfig
from obesity.sweep.sweeper import build_pruner, pruner_active


def fold_reporter(cfg: TrainConfig) -> Callable[[int, float], bool] | None:
    """`(fold, running objective) -> stop?` for a trial of a sweep with a pruner, else None."""
    if cfg.trial is None or not HydraConfig.initialized():
        return None
    sweeper = HydraConfig.get().sweeper
    name, storage_url = sweeper.get("study_name"), sweeper.get("storage")
    if not (name and storage_url and pruner_active(sweeper.get("pruner"))):
        return None
    import optuna

    storage = _storage(str(storage_url))
    study = optuna.load_study(study_name=str(name), storage=storage,
                              pruner=build_pruner(sweeper.pruner))
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(str(name)), int(cfg.trial))
    trial = optuna.trial.Trial(study, trial_id)

    def report(fold: int, value: float) -> bool:
        trial.report(value, fold)
        return bool(trial.should_prune())
    return report


def _storage(url: str) -> Any:
    """One storage (connection pool) per runtime, however many trials a worker runs."""
    import optuna

    from obesity.runtime import current
    from obesity.stores import sqlite_tuning

    storages = current().caches.study_storages
    if url not in storages:
        sqlite_tuning.install()  # a trial's own connection to the study file
        storages[url] = optuna.storages.get_storage(url)
    return storages[url]
