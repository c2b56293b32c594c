"""Fold-level pruning inside a sweep trial: the job finds its own trial in the study storage.

No Hydra sweeper hands the trial to the job (Hydra issues #1710, #1954); ours tags every job with
`trial=<number>` and keeps the study in a storage every worker reaches, so the job opens the
study with the configured pruner, reports its running CV score after each fold and asks whether
to stop. The sweeper then tells the study PRUNED (obesity/sweep/study.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from obesity.sweep.sweeper import build_pruner, pruner_active


def fold_reporter(cfg: DictConfig) -> Callable[[int, float], bool] | None:
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


@functools.cache  # one storage (connection pool) per worker process, however many trials it runs
def _storage(url: str) -> Any:
    import optuna

    from obesity.stores import sqlite_tuning

    sqlite_tuning.install()  # a trial's own connection to the study file
    return optuna.storages.get_storage(url)
