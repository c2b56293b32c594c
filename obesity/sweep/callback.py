"""One MLflow tree per multirun: a parent run per sweep invocation, each trial a child run.

`SweepTracking` is a Hydra callback (configs/train.yaml: hydra.callbacks). At the start it creates
the store once (parallel workers racing to create a fresh sqlite store crash), marks runs of dead
sweeps KILLED, and opens the parent run; trials find it through a file in the sweep dir. At the
end it logs the study summary and plots and hands the best trial to promotion.
"""

from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from obesity.config.compose import typed
from obesity.config.schemas import TrainConfig
from obesity.sweep.context import PARENT_FILE

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)


def _task_config(config: DictConfig) -> TrainConfig:
    """The job's config, without Hydra's own node (its dataclass has no place for it, and its
    job-time values are missing while a multirun starts or ends)."""
    task = copy.deepcopy(config)
    with open_dict(task):
        del task["hydra"]
    return typed(task, TrainConfig)


def warm_up_workers(config: DictConfig) -> None:
    """With the joblib launcher, start its workers and their imports (seconds) now, in the
    background, while this process opens the stores: the launcher's first batch then finds them
    ready (loky reuses an executor created with the same arguments)."""
    launcher = config.hydra.launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return
    import threading

    from joblib import Parallel, delayed

    from obesity.compat.hydra_joblib_launcher import process_joblib_cfg
    from obesity.config.values import plain

    joblib_cfg = plain(launcher)
    joblib_cfg.pop("_target_", None)
    process_joblib_cfg(joblib_cfg)
    if joblib_cfg.get("backend") != "loky" or joblib_cfg.pop("inner_max_num_threads", None):
        return
    n = int(joblib_cfg.get("n_jobs") or 1)

    def warm() -> None:
        try:
            Parallel(**joblib_cfg)(delayed(_import_task_module)() for _ in range(max(n, 1)))
        except Exception as exc:  # only an optimisation: the launcher starts them anyway
            log.debug("worker warm-up failed: %s", exc)

    threading.Thread(target=warm, name="warm-up-workers", daemon=True).start()


def _import_task_module() -> None:
    import obesity.training.job  # noqa: F401


class SweepTracking(Callback):
    """Hydra callback: the parent run of a multirun, its summary, and promotion at its end."""

    def __init__(self, promote: bool = True) -> None:
        self.promote = promote
        self.parent_run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from obesity.errors import ObesityError
        from obesity.stores import locations, owner, tracking
        from obesity.training.job import preflight

        warm_up_workers(config)
        try:
            preflight(_task_config(config))  # bad values or data: one line now, not a FAILED run per trial
            # creates a fresh store under a lock: workers starting together do not race
            experiment_id = tracking.setup(config.registry)
        except ObesityError as exc:
            log.error("%s", exc)
            raise SystemExit(1) from None  # one line, not Hydra's traceback
        client = MlflowClient()
        killed = tracking.kill_orphaned_runs(client, experiment_id)
        if killed:
            log.warning("marked KILLED %d MLflow run(s) of dead sweeps", len(killed))
        sweeper = config.hydra.sweeper
        study = sweeper.get("study_name")
        tags = {"sweep": "true", "owner": owner.me(), "sweep_dir": str(config.hydra.sweep.dir),
                "model": config.model.name, "data": config.data.name,
                **tracking.git_state(config.paths.root)}
        if study:
            tags |= {"study": str(study), "storage": locations.redact(str(sweeper.storage))}
        run = client.create_run(experiment_id, run_name=f"sweep {study or 'grid'}", tags=tags)
        self.parent_run_id = run.info.run_id
        params = {
            "sweeper": config.hydra.sweeper._target_,
            "launcher": config.hydra.launcher._target_,
            "overrides": " ".join(config.hydra.overrides.task) or "(none)",
        }
        if study:
            params |= {"n_trials": sweeper.n_trials, "batch_size": sweeper.n_jobs,
                       "direction": sweeper.direction, "sampler": sweeper.sampler._target_,
                       "sampler_seed": sweeper.sampler.get("seed"),
                       "custom_search_space": sweeper.get("custom_search_space")}
        client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        client.log_text(run.info.run_id,
                        OmegaConf.to_yaml(OmegaConf.to_container(sweeper, resolve=True)),
                        "sweep/sweeper.yaml")
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_FILE).write_text(run.info.run_id)
        log.info("MLflow parent run %s (experiment %s)", run.info.run_id, config.registry.experiment)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient

        from obesity.registry import promote
        from obesity.stores import tracking
        from obesity.sweep import report as sweep_report

        parent = self.parent_run_id
        if parent is None:  # stopped before its parent run (a bad config): no store to touch
            return
        client = MlflowClient()
        if sys.exc_info()[0] is not None:  # Hydra calls this in a `finally`: the sweep failed
            client.set_terminated(parent, "FAILED")
            return
        lost = tracking.kill_lost_children(client, client.get_run(parent).info.experiment_id, parent)
        if lost:
            log.warning("marked KILLED %d trial run(s) whose process was lost: %s", len(lost),
                        ", ".join(lost))
        try:
            best_run = sweep_report.summarize(client, config, parent)
            if self.promote and best_run is not None:
                study = config.hydra.sweeper.get("study_name")
                if study:
                    promote_study_once(client, config, parent, str(study))
                else:
                    from obesity.registry import promote

                    promote.promote_run(_task_config(config), best_run, sweep_run_id=parent)
        except Exception:
            client.set_terminated(parent, "FAILED")
            raise
        client.set_terminated(parent, "FINISHED")


def promote_study_once(client: MlflowClient, config: DictConfig, parent: str, study_name: str) -> None:
    """Promote the study's best trial once, however many workers share the study.

    Under the study's lock: while trials still run in other workers, this worker leaves the
    promotion to the last one to finish; the last one re-reads the best trial (others may have
    improved it since this worker's summary) and promotes it. A second worker finishing at the
    same moment finds that trial registered already (promote.promote_run) and does nothing.
    """
    import optuna
    from optuna.trial import TrialState

    from obesity.registry import promote
    from obesity.stores.locks import db_lock
    from obesity.sweep import report as sweep_report
    from obesity.sweep.study import fail_stale_trials, lock_name
    from obesity.sweep.study import storage as study_storage
    from obesity.sweep.sweeper import Heartbeat

    sweeper = config.hydra.sweeper
    storage = str(sweeper.storage)
    beat = Heartbeat(sweeper.heartbeat_interval, sweeper.grace_period, sweeper.max_retry)
    with db_lock(storage, lock_name(study_name)):
        study = optuna.load_study(study_name=study_name, storage=study_storage(storage, beat))
        fail_stale_trials(study, beat.grace_period)  # a dead worker's trial blocks nothing
        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if running:
            log.info("study %s: %d trial(s) still running in other workers; the last worker to "
                     "finish promotes the best trial", study_name, running)
            return
        best = sweep_report.best_trial_run(client, client.get_run(parent).info.experiment_id,
                                           study_name, study.best_trial.number)
        if best is not None:
            promote.promote_run(_task_config(config), best, sweep_run_id=parent)
