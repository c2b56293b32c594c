"""Optuna study helpers and the resumable sweep loop (imported only when a sweep runs)."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import optuna
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl
from optuna.trial import Trial, TrialState

import obesity.sqlite_tuning  # noqa: F401  (WAL for the embedded stores)
from obesity import owner

log = logging.getLogger("obesity.sweep")
OWNER_ATTR = "owner"  # trial user attr: the sweeper process (host:pid) that asked for the trial


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials whose owning sweep process is dead; return their numbers."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owner.is_dead(trial.user_attrs.get(OWNER_ATTR)):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            failed.append(trial.number)
    return failed


def count(study: optuna.Study, *states: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


class ResumableSweeperImpl(OptunaSweeperImpl):
    """OptunaSweeperImpl whose `n_trials` is the total of finished trials the study should hold."""

    sampler_factory: Any = None

    def sweep(self, arguments: list[str]) -> None:
        if not self.storage:
            log.error("hydra.sweeper.storage is empty, so the study could not be resumed or "
                      "shared: set registry.study_storage (registry=server: the OPTUNA_STORAGE "
                      "env var)")
            raise SystemExit(1)  # a clear line, not a traceback through Hydra
        study = optuna.create_study(
            study_name=self.study_name, storage=self.storage,
            directions=self._get_directions(), load_if_exists=True,
        )
        orphans = fail_orphaned_trials(study)
        if orphans:
            log.warning("study %s: marked FAIL the trials of a dead sweep: %s",
                        study.study_name, orphans)
        finished = count(study, TrialState.COMPLETE, TrialState.PRUNED)
        total = self.n_trials
        self.n_trials = max(0, total - finished)
        if self.sampler_factory is not None:
            self.sampler = self.sampler_factory(len(study.trials))
        log.info("study %s: %d of n_trials=%d trials finished; running %d more",
                 study.study_name, finished, total, self.n_trials)
        super().sweep(arguments)

    def _configure_trials(self, trials: list[Trial], *args: Any) -> Sequence[Sequence[str]]:
        overrides = super()._configure_trials(trials, *args)
        me = owner.me()
        for trial in trials:
            trial.set_user_attr(OWNER_ATTR, me)
        return [(*o, f"trial={t.number}") for o, t in zip(overrides, trials)]
