"""The Optuna sweeper, made resumable: `hydra.sweeper._target_: obesity.sweep.sweeper.StudySweeper`.

Differences from hydra-optuna-sweeper's own class:
- `n_trials` is the TOTAL the study should reach: a rerun of the same command tops the study up
  and a finished study runs nothing (the plain sweeper would add n_trials new trials each time);
- each trial's sweep beats for it (Optuna's heartbeat): a trial whose worker stopped beating
  (killed, on any host) is failed and retried, and a worker waits for trials still running
  elsewhere, so the last one standing promotes the best;
- the sampler is reseeded before every trial from (seed, trial number), so neither a resumed
  sweep nor a second worker replays trials already drawn, yet the sequence stays reproducible
  (and independent of the batch size);
- every trial's overrides carry `trial=<number>` so its MLflow run is tagged with it, and lets the
  trial find itself in the study: with a pruner (`hydra/sweeper/pruner=median`, ...) the trial
  reports its running CV score after each fold and stops when the pruner says so (PRUNED);
- a new study starts with the champion's parameters as its first trial (`warm_start`).
Registered as `hydra/sweeper=study` (configs/sweep/base.yaml picks it).
This module stays light (Hydra imports it at every start-up); Optuna is imported when a sweep runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate
from omegaconf import MISSING, OmegaConf

from obesity.compat.hydra_optuna_sweeper import OptunaSweeper, OptunaSweeperConf

SAMPLER_TARGETS = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")


class StudySweeper(OptunaSweeper):
    """hydra-optuna-sweeper with resume-to-total semantics (see module docstring)."""

    def __init__(self, sampler: Any, direction: Any, storage: Any, study_name: Any,
                 n_trials: int, n_jobs: int, max_failure_rate: float,
                 custom_search_space: Any, params: Any, pruner: Any = None,
                 warm_start: bool = True, heartbeat_interval: int = 5, grace_period: int = 30,
                 max_retry: int = 2) -> None:
        # `pruner` is not used here: each trial reads it from its Hydra config and asks the
        # study itself (obesity/sweep/pruning.py); the sweeper only tells PRUNED apart
        from obesity.sweep.study import ResumableSweeperImpl

        sampler_cfg = OmegaConf.create(OmegaConf.to_container(sampler, resolve=True)) if sampler else None
        self.sweeper = ResumableSweeperImpl(
            _build(sampler_cfg, partial=False), direction, storage, study_name, n_trials, n_jobs,
            max_failure_rate, custom_search_space, params,
        )
        self.sweeper.sampler_factory = _seeded_factory(sampler_cfg)
        self.sweeper.warm_start = warm_start
        self.sweeper.heartbeat = Heartbeat(heartbeat_interval, grace_period, max_retry)


@dataclass(frozen=True)
class Heartbeat:
    """A sweep beats for each trial it runs every `interval` s; a RUNNING trial with no beat for
    `grace_period` s (its worker died, on any host) is failed and retried up to `max_retry`
    times (Optuna's RDBStorage heartbeat and RetryHeartbeatStaleTrialCallback)."""

    interval: int = 5
    grace_period: int = 30
    max_retry: int = 2


NO_PRUNER = "optuna.pruners.NopPruner"  # hydra/sweeper/pruner=none
PRUNER_TARGETS = ("optuna.pruners.*",)


def pruner_active(pruner: Any) -> bool:
    """Does this `hydra.sweeper.pruner` node ask trials to report folds and maybe stop?"""
    return bool(pruner) and pruner.get("_target_") != NO_PRUNER


def build_pruner(pruner: Any) -> Any:
    """The Optuna pruner a `hydra.sweeper.pruner` node names (only optuna.pruners.*)."""
    return instantiate(pruner, _execution_whitelist_=PRUNER_TARGETS)


@dataclass
class StudySweeperConf(OptunaSweeperConf):
    """hydra-optuna-sweeper's schema plus what StudySweeper adds: a pruner (its own config group,
    configs/hydra/sweeper/pruner/) and warm start."""

    _target_: str = "obesity.sweep.sweeper.StudySweeper"
    # median: the figures of scripts/bench_sweep.py --pruner median (docs/benchmarks.md)
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "median"}])
    pruner: Any = MISSING  # filled by the pruner group (MISSING: the group merge is not overwritten)
    # a new study's first trial is the champion's parameters (same model family and data)
    warm_start: bool = True
    # a worker beats for its trials; one silent for grace_period s is dead: its trials are
    # failed and retried (max_retry times), whichever host it ran on
    heartbeat_interval: int = 5
    grace_period: int = 30
    max_retry: int = 2


def register() -> None:
    """`hydra/sweeper=study` in Hydra's ConfigStore: called by hydra_plugins/obesity_sweeper.py
    when Hydra scans its plugins (never on import of this module); once: a process that scans
    again (a Ray or joblib worker) finds it there."""
    store = ConfigStore.instance()
    if "study.yaml" not in store.repo.get("hydra", {}).get("sweeper", {}):
        store.store(group="hydra/sweeper", name="study", node=StudySweeperConf, provider="obesity")


def _build(sampler_cfg: Any, partial: bool) -> Any:
    if sampler_cfg is None:
        return None
    return instantiate(sampler_cfg, _execution_whitelist_=SAMPLER_TARGETS, _partial_=partial)


def _seeded_factory(sampler_cfg: Any) -> Callable[[int], Any] | None:
    """`number -> sampler seeded with seed + number`; None for an unseeded sampler. The config
    is instantiated once (a partial): a sampler per trial then costs microseconds."""
    if sampler_cfg is None or sampler_cfg.get("seed") is None:
        return None
    make, seed = _build(sampler_cfg, partial=True), int(sampler_cfg.seed)
    return lambda number: make(seed=seed + number)
