"""MLflow plumbing: the store, the experiment, and what every run records."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402

import obesity.sqlite_tuning  # noqa: E402,F401  (WAL for the embedded stores)
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from omegaconf.errors import InterpolationResolutionError  # noqa: E402

from obesity.config import flatten  # noqa: E402
from obesity.errors import ConfigError  # noqa: E402

# Types skops may load besides its own defaults: reviewed once here, never "trust everything".
SKOPS_TRUSTED_TYPES = [
    "obesity.features.AddBMI",  # our own BMI step
    "sklearn.tree._tree.Tree",  # rf, et
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # hgb
]
_MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value
RESOLVED_CONFIG = "config/resolved.yaml"  # every run's exact config: what a refit reruns


def setup(registry_cfg: DictConfig) -> str:
    """Point MLflow at the configured store and return the experiment id (created if missing)."""
    try:
        uri = registry_cfg.tracking_uri
        registry_cfg.registry_uri  # noqa: B018  (resolve it now, to fail here if it cannot)
    except InterpolationResolutionError as exc:  # e.g. registry=server without its env var
        raise ConfigError(f"registry={registry_cfg.name} needs its environment (set it, or use "
                          f"registry=local): {exc}") from None
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if registry_cfg.registry_uri:
        mlflow.set_registry_uri(registry_cfg.registry_uri)
    key = (uri, registry_cfg.registry_uri, registry_cfg.experiment)
    if key not in _EXPERIMENT_IDS:  # once per process: sweep workers run many trials
        _EXPERIMENT_IDS[key] = _experiment_id(registry_cfg)
    return _EXPERIMENT_IDS[key]


_EXPERIMENT_IDS: dict[tuple, str] = {}


def _experiment_id(registry_cfg: DictConfig) -> str:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(registry_cfg.experiment)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if registry_cfg.artifact_root:
        artifact_location = Path(registry_cfg.artifact_root).resolve().as_uri()
    try:
        return client.create_experiment(registry_cfg.experiment, artifact_location=artifact_location)
    except MlflowException:  # another process created it in the meantime
        return client.get_experiment_by_name(registry_cfg.experiment).experiment_id


def config_params(cfg: DictConfig) -> dict[str, str]:
    """The resolved config (without Hydra's own node) as flat MLflow params."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return {name: _param_value(value) for name, value in flatten(container)}


def _param_value(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= _MAX_PARAM_CHARS else text[: _MAX_PARAM_CHARS - 3] + "..."


@functools.lru_cache(maxsize=4)  # once per process: sweep workers run many trials
def git_state(root: str | Path = ".") -> dict[str, str]:
    """The commit the code runs at and whether the work tree differs from it."""
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
    from obesity import owner

    killed = []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'",
                                  max_results=1000):
        if owner.is_dead(run.data.tags.get("owner")):
            client.set_terminated(run.info.run_id, "KILLED")
            killed.append(run.info.run_id)
    return killed


def redact(url: str) -> str:
    """A storage URL without its password, fit for logs and tags."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL: nothing secret in it
        return url


def run_config(run_id: str) -> DictConfig:
    """The resolved config a run was made with (its `config/resolved.yaml` artifact)."""
    return OmegaConf.create(mlflow.artifacts.load_text(f"runs:/{run_id}/{RESOLVED_CONFIG}"))
