"""Optuna study helpers and the resumable, shareable sweep loop (imported only when a sweep runs).

The loop is hydra-optuna-sweeper's, with two changes that make N workers on one study exact:
before EVERY batch, under a lock held in the study database (obesity.stores.locks), a worker counts
the trials that are finished or running anywhere and asks only for what is left of `n_trials`;
and a failed trial is one clear log line, not a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import optuna
from omegaconf import OmegaConf
from optuna.storages import RDBStorage
from optuna.trial import Trial, TrialState

from obesity.compat.hydra_optuna_sweeper_impl import OptunaSweeperImpl, create_params_from_overrides
from obesity.compat.optuna_storage import record_heartbeat
from obesity.errors import StoreError
from obesity.stores import locations
from obesity.stores.locks import db_lock

log = logging.getLogger(__name__)
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)  # count toward n_trials
BEATS = "heartbeat_s"  # trial user attr: its sweep beats for it every this many seconds


def storage(url: str, heartbeat: Any) -> RDBStorage:
    """The study's storage with Optuna's heartbeat: a RUNNING trial whose worker stopped
    beating for `heartbeat.grace_period` s is failed and retried (as a WAITING copy)."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    from obesity.stores import sqlite_tuning

    sqlite_tuning.install()  # WAL for the embedded study file
    with warnings.catch_warnings():  # the heartbeat arguments are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(url, heartbeat_interval=heartbeat.interval,
                          grace_period=heartbeat.grace_period,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                              max_retry=heartbeat.max_retry))


def fail_stale_trials(study: optuna.Study, grace_period: float) -> list[int]:
    """Fail the RUNNING trials whose worker stopped beating (their retries are queued), and
    those started over `grace_period` s ago by a sweep that never beat (an older version):
    nothing could ever prove them alive. Returns their numbers."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    cutoff = datetime.now() - timedelta(seconds=grace_period)  # Optuna's naive local times
    for trial in running:
        if BEATS not in trial.user_attrs and (trial.datetime_start or cutoff) < cutoff:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    # FAIL, not merely no longer RUNNING: a live worker may have finished one meanwhile
    failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return sorted(t.number for t in running if t.number in failed)


@contextlib.contextmanager
def beating(study: optuna.Study, trials: Sequence[Trial], interval: float) -> Iterator[None]:
    """Record a heartbeat for `trials` every `interval` s while the block runs (the launcher
    runs them, maybe in other processes): the proof, for other workers, that they are alive."""
    stop = threading.Event()

    def run() -> None:
        while True:
            for trial in trials:
                with contextlib.suppress(Exception):  # a missed beat is retried next interval
                    record_heartbeat(study, trial)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=run, name="trial-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def count(study: optuna.Study, *states: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def lock_name(study_name: str) -> str:
    return f"study:{study_name}"


class ResumableSweeperImpl(OptunaSweeperImpl):
    """OptunaSweeperImpl whose `n_trials` is the total of trials the study should hold, shared
    exactly by any number of concurrent workers."""

    sampler_factory: Any = None
    warm_start = True  # a new study's first trial: the champion's parameters
    heartbeat: Any = None  # obesity.sweep.sweeper.Heartbeat

    def sweep(self, arguments: list[str]) -> None:
        if not self.storage:
            log.error("hydra.sweeper.storage is empty, so the study could not be resumed or "
                      "shared: set registry.study_storage (registry=server: the OPTUNA_STORAGE "
                      "env var)")
            raise SystemExit(1)  # a clear line, not a traceback through Hydra
        if not self.study_name:
            log.error("hydra.sweeper.study_name is empty: a resumable study is found by its name")
            raise SystemExit(1)
        study_name: str = self.study_name
        if isinstance(self.sampler, functools.partial):  # GridSampler: the plugin's own loop
            super().sweep(arguments)
            return
        assert self.launcher is not None and self.job_idx is not None and self.config is not None
        try:
            locations.check_sqlite(self.storage, "Optuna study storage", create=True)
        except StoreError as exc:
            log.error("%s", exc)
            raise SystemExit(1) from None
        self._process_searchspace_config()
        space, fixed_params, fixed_overrides = create_params_from_overrides(
            [*self._parse_sweeper_params_config(), *arguments])
        for name in fixed_params:
            space.pop(name, None)
        directions: Any = self._get_directions()  # 'maximize'/'minimize' strings
        # under the lock: workers starting together on a fresh database would race to create
        # Optuna's tables (PostgreSQL: "duplicate key value ... studydirection")
        with db_lock(self.storage, lock_name(study_name)):
            study = optuna.create_study(study_name=study_name,
                                        storage=storage(self.storage, self.heartbeat),
                                        directions=directions, load_if_exists=True)
            if self.warm_start and not study.trials:  # new: start from the champion
                from obesity.sweep.warm_start import enqueue_champion

                enqueue_champion(study, self.config, space)
        total = self.n_trials
        finished = count(study, TrialState.COMPLETE, TrialState.PRUNED)
        running = count(study, TrialState.RUNNING)
        log.info("study %s: %d of n_trials=%d trials finished; running %d more%s",
                 study.study_name, finished, total, max(0, total - finished - running),
                 f" ({running} running in other workers)" if running else "")
        searched = [o for o in self.config.hydra.overrides.hydra
                    if o.startswith(("hydra/sweeper/pruner", "hydra/sweeper/sampler",
                                     "hydra.sweeper.pruner.", "hydra.sweeper.sampler."))]
        if finished + running >= total and searched:
            log.warning("study %s already holds its n_trials=%d: %s changes nothing; give the "
                        "sweep its own hydra.sweeper.study_name=... (or raise n_trials)",
                        study.study_name, total, " ".join(searched))
        progress = Progress(total)
        waiting_said = False
        while True:
            with db_lock(self.storage, lock_name(study_name)):
                stale = fail_stale_trials(study, self.heartbeat.grace_period)
                if stale:
                    log.warning("study %s: trial(s) %s stopped beating for grace_period=%ss (their "
                                "worker died): marked FAIL, retried up to max_retry=%d times",
                                study.study_name, stale, self.heartbeat.grace_period,
                                self.heartbeat.max_retry)
                # one read of the study per batch: finished, or running anywhere and alive
                every = study.get_trials(deepcopy=False)
                taken = [t for t in every if t.state in TAKEN]
                left = total - len(taken)
                trials: list[Trial] = []
                with warnings.catch_warnings():  # "heartbeat is meant for optimize()": we beat
                    warnings.simplefilter("ignore", UserWarning)
                    for _ in range(min(self.n_jobs, left)):
                        # the trial's number, under the lock: the count of trials in the study
                        self._reseed(study, len(every) + len(trials))
                        trials.append(study.ask())
                for trial in trials:  # beating before the lock is released: others count them
                    record_heartbeat(study, trial)
                    trial.set_user_attr(BEATS, self.heartbeat.interval)
            if not trials:
                elsewhere = [t.number for t in taken if t.state == TrialState.RUNNING]
                if not elsewhere:
                    break
                if not waiting_said:  # they finish, or go stale and come back as retries
                    log.info("study %s: waiting for trial(s) %s running in other workers",
                             study.study_name, elsewhere)
                    waiting_said = True
                time.sleep(self.heartbeat.interval)
                continue
            overrides = self._configure_trials(trials, space, fixed_params, fixed_overrides)
            with beating(study, trials, self.heartbeat.interval):
                returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            outcomes = [_tell(study, trial, ret, len(directions))
                        for trial, ret in zip(trials, returns, strict=True)]
            failed = outcomes.count(TrialState.FAIL)  # a pruned trial is not a failure
            if failed / len(returns) > self.max_failure_rate:
                log.error("%d of %d trials in the last batch failed (max_failure_rate=%s): "
                          "stopping the sweep", failed, len(returns), self.max_failure_rate)
                raise SystemExit(1)
            progress.batch_done(study, len(taken) + len(trials), len(trials))
        running = count(study, TrialState.RUNNING)
        log.info("study %s: %d of n_trials=%d trials finished%s", study.study_name,
                 count(study, TrialState.COMPLETE, TrialState.PRUNED), total,
                 f"; {running} still running in other workers" if running else "")
        if count(study, TrialState.COMPLETE) and len(directions) == 1:
            best = study.best_trial
            OmegaConf.save(OmegaConf.create({"name": "optuna", "best_params": best.params,
                                             "best_value": best.value}),
                           f"{self.config.hydra.sweep.dir}/optimization_results.yaml")

    def _reseed(self, study: optuna.Study, number: int) -> None:
        """Seed the sampler from (seed, trial number) before a trial samples anything.

        Trial numbers are unique in a study, so no two trials (of one worker, of several
        started together, of a resumed sweep) share a seed; and trial k draws the same
        independent values whatever the batch size. A seed read once at start was the same for
        workers started together: they ran identical trials."""
        if self.sampler_factory is not None:
            study.sampler = self.sampler_factory(number)

    def _configure_trials(self, trials: list[Trial], *args: Any) -> Sequence[Sequence[str]]:
        overrides = []
        for trial in trials:  # one at a time, each with its own seed
            self._reseed(trial.study, trial.number)
            [override] = super()._configure_trials([trial], *args)
            overrides.append((*override, f"trial={trial.number}"))
        return overrides


class Progress:
    """One line on stderr per batch: where the study stands, the best so far, time left."""

    def __init__(self, total: int) -> None:
        self.total, self.mine, self.start = total, 0, time.monotonic()

    def batch_done(self, study: optuna.Study, reached: int, size: int) -> None:
        self.mine += size
        elapsed = time.monotonic() - self.start
        left = elapsed / self.mine * max(0, self.total - reached)
        try:
            best = study.best_trial
            best_text = f"best {best.value:.4f} (trial {best.number})"
        except ValueError:  # no trial completed yet (or a multi-objective study)
            best_text = "no completed trial yet"
        # a count of trials (1-based) beside trial numbers (Optuna's, 0-based): said as such
        log.info("%d of %d trials done; %s; %s elapsed, ~%s left", reached, self.total, best_text,
                 _clock(elapsed), _clock(left))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _tell(study: optuna.Study, trial: Trial, ret: Any, n_objectives: int) -> TrialState:
    """Record one finished job in the study (COMPLETE, PRUNED or FAIL, with one log line)."""
    from hydra.core.utils import JobStatus

    from obesity.sweep.outcome import Pruned

    # Read before `return_value`, which prints "Error executing job" for any failed job.
    outcome = getattr(ret, "_return_value", None)
    if ret.status == JobStatus.COMPLETED and isinstance(outcome, Pruned):
        study.tell(trial, state=TrialState.PRUNED)  # its value: the last fold it reported
        log.info("trial %d pruned: %s", trial.number, outcome.reason)
        return TrialState.PRUNED
    try:
        value = ret.return_value  # re-raises the job's exception if it failed
        values = [float(value)] if n_objectives == 1 else [float(v) for v in value]
    except Exception as exc:
        study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
        return TrialState.FAIL
    study.tell(trial, values=values)
    return TrialState.COMPLETE
