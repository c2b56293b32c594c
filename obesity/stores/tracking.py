"""MLflow plumbing: the store, the experiment, and what every run records."""

from __future__ import annotations

import contextlib
import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from obesity.config.compose import typed
from obesity.config.schemas import RegistryConfig, TrainConfig
from obesity.config.values import flatten, plain
from obesity.environment import quiet_libraries
from obesity.errors import StoreError, first_line
from obesity.runtime import current
from obesity.stores import locations, locks, sqlite_tuning

# What loading a logged pipeline needs, pinned to the installed (uv.lock) versions and passed to
# log_model: MLflow's inference would load the model in a subprocess (seconds a model, and
# warnings) and list whatever happened to be imported (pytest, rich). The pipeline's BMI step also
# needs this project itself (obesity.model.features), which no package index has.
MODEL_DISTRIBUTIONS = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")


@functools.cache
def model_requirements() -> list[str]:
    """`name==version` of MODEL_DISTRIBUTIONS as installed here."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in MODEL_DISTRIBUTIONS]


_MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value
RESOLVED_CONFIG = "config/resolved.yaml"  # every run's exact config: what a refit reruns


def use_stores(registry_cfg: RegistryConfig) -> str:
    """Point MLflow at the configured store (touching nothing yet) and return its URI."""
    quiet_libraries()
    sqlite_tuning.install()  # WAL for the embedded store
    # resolved already: config.compose.typed named a missing environment variable
    uri, registry_uri = registry_cfg.tracking_uri, registry_cfg.registry_uri
    mlflow.set_tracking_uri(uri)
    if registry_uri:
        mlflow.set_registry_uri(registry_uri)
    return uri


def client(registry_cfg: RegistryConfig) -> MlflowClient:
    """An MlflowClient on the configured store.

    MLflow opens the store in the client's constructor, and migrates a fresh (empty) one there:
    the first client of a process is made under the creation lock, so a process opening the
    store while another creates it waits instead of migrating it twice."""
    uri = use_stores(registry_cfg)
    opened_stores = current().caches.opened_stores  # MLflow keeps them open, migrated
    if uri in opened_stores:
        return MlflowClient()
    with locks.creation_lock(registry_cfg):
        opened = MlflowClient()
    opened_stores.add(uri)
    return opened


def setup(registry_cfg: RegistryConfig) -> str:
    """Point MLflow at the configured store and return the experiment id (created if missing).

    An embedded store that cannot be opened fails at once (StoreError naming the file); a fresh
    one is created under a lock, so processes starting together do not race in its migrations.
    """
    uri = use_stores(registry_cfg)
    key = (uri, registry_cfg.registry_uri, registry_cfg.experiment)
    experiments = current().caches.experiments
    if key not in experiments:  # once per runtime: sweep workers run many trials
        locations.check_sqlite(uri, "MLflow store", create=True)
        with locks.creation_lock(registry_cfg):
            experiments[key] = _experiment_id(registry_cfg)
    return experiments[key]


def _experiment_id(registry_cfg: RegistryConfig) -> str:
    mlflow_client = client(registry_cfg)  # setup holds the creation lock: re-entrant
    experiment = mlflow_client.get_experiment_by_name(registry_cfg.experiment)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if registry_cfg.artifact_root:
        artifact_location = Path(registry_cfg.artifact_root).resolve().as_uri()
    try:
        return mlflow_client.create_experiment(registry_cfg.experiment, artifact_location=artifact_location)
    except MlflowException:  # another process created it in the meantime
        experiment = mlflow_client.get_experiment_by_name(registry_cfg.experiment)
        if experiment is None:  # created and deleted meanwhile: the next run creates it
            raise
        return experiment.experiment_id


def config_params(cfg: TrainConfig) -> dict[str, str]:
    """The resolved config (without Hydra's own node) as flat MLflow params."""
    container = plain(cfg)
    container.pop("hydra", None)
    return {name: param_value(value) for name, value in flatten(container)}


def param_value(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= _MAX_PARAM_CHARS else text[: _MAX_PARAM_CHARS - 3] + "..."


def git_state(root: str | Path = ".") -> dict[str, str]:
    """The commit the code runs at and whether the work tree differs from it (asked once per
    runtime: sweep workers run many trials)."""
    known = current().caches.git
    if str(root) not in known:
        known[str(root)] = _git_state(root)
    return known[str(root)]


def _git_state(root: str | Path) -> dict[str, str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(dirty).lower()}


def kill_orphaned_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs whose owner process (tag `owner`) is dead."""
    from obesity.stores import owner

    killed = []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'",
                                  max_results=1000):
        if owner.is_dead(run.data.tags.get("owner")):
            client.set_terminated(run.info.run_id, "KILLED")
            killed.append(run.info.run_id)
    return killed


def kill_lost_children(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list[str]:
    """Mark KILLED the child runs of a sweep that are still RUNNING when its launcher has
    returned every trial: their process was lost (a cluster node that died, its task retried
    elsewhere as a new run), and no host can tell by its pid."""
    lost = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}' "
                              "and attributes.status = 'RUNNING'", max_results=1000)
    for run in lost:
        client.set_terminated(run.info.run_id, "KILLED")
    return [run.info.run_id for run in lost]


def run_config(run_id: str) -> TrainConfig:
    """The resolved config a run was made with (its `config/resolved.yaml` artifact), checked
    against today's schemas (compose.recompose)."""
    from obesity.config.compose import recompose

    text = mlflow.artifacts.load_text(f"runs:/{run_id}/{RESOLVED_CONFIG}")
    return typed(recompose(text, f"run {run_id}: {RESOLVED_CONFIG}"), TrainConfig)


@contextlib.contextmanager
def store_errors(registry_cfg: RegistryConfig) -> Iterator[None]:
    """An MLflow error that reaches a user (an unreachable server, a request it refuses) as a
    StoreError naming the store, for the CLI's one-line exit."""
    try:
        yield
    except MlflowException as exc:
        where = locations.redact(str(registry_cfg.tracking_uri))
        raise StoreError(f"MLflow store {where}: {first_line(str(exc.message))}") from None
