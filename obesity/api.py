"""The Python API (re-exported by `obesity`): the command line's configs and code paths.

    cfg = obesity.compose(["model=hgb", "data=lifestyle", "seed=3"])
    result = obesity.fit(cfg)             # = python -m obesity.train model=hgb data=lifestyle seed=3
    obesity.command_line(cfg)             # that line, to rerun the result outside the notebook

Errors are the command line's errors, raised as `obesity.ConfigError` / `DataError` /
`RegistryError` (all `obesity.ObesityError`).
"""

from __future__ import annotations

import shlex
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from obesity.config.compose import GROUPS, compose, hydra_value, root_override, sweep_command
from obesity.config.schemas import flatten, plain
from obesity.environment import quiet_libraries


def fit(cfg: DictConfig) -> Any:
    """Train, evaluate and record `cfg` in MLflow: what `python -m obesity.train` does.

    Returns a `TrainResult`: `run_id`, `metrics`, `objective`, `model` (the Pipeline fitted on
    the train split; None if `evaluate_test` and `log_model` are both false: then only CV ran).
    """
    import hydra.utils

    quiet_libraries()  # before MLflow is imported
    from obesity.config import schemas as config
    from obesity.training import job as training

    with hydra.utils.execution_whitelist(config.EXECUTION_WHITELIST):
        return training.run(cfg, overrides=shlex.split(command_line(cfg))[3:])


def load_data(cfg: DictConfig | None = None) -> pd.DataFrame:
    """The validated, deduplicated data of `cfg.data` (all 17 columns), as training sees it."""
    from obesity.data.load import load_dataset

    cfg = cfg if cfg is not None else compose()
    return load_dataset(cfg.data.path).frame.copy()  # a copy: the loader's cache stays untouched


def load_champion(cfg: DictConfig | None = None, alias: str | None = None) -> Any:
    """The fitted Pipeline registered as `registry.model_name@alias` (default: champion),
    loaded only if it is a model the framework produced (obesity.model.files)."""
    quiet_libraries()  # before MLflow is imported
    from mlflow.tracking import MlflowClient

    from obesity.errors import RegistryError
    from obesity.model import files as model_files
    from obesity.registry import aliases
    from obesity.stores import locations, tracking

    cfg = cfg if cfg is not None else compose()
    reg = cfg.registry
    alias = alias or reg.champion_alias
    tracking.setup(reg)
    version = aliases.alias_version(MlflowClient(), reg.model_name, alias)
    if version is None:
        raise RegistryError(
            f"no {reg.model_name}@{alias} in {locations.redact(reg.tracking_uri)}: run a sweep "
            f"({sweep_command(cfg.data.name)}) or python -m obesity.registry promote VERSION")
    return model_files.load_pipeline(reg.model_name, version.version)


def command_line(cfg: DictConfig) -> str:
    """The `python -m obesity.train ...` line that reproduces `cfg` (run it from the repository
    root, or anywhere with the same paths.root): its groups, then every key that differs."""
    groups = [f"{g}={cfg[g].name}" for g in GROUPS if cfg[g].name != _default_choice(g)]
    base = _flat(compose(groups))
    mine = _flat(cfg)
    changed = [f"{key}={hydra_value(value)}" for key, value in mine.items()
               if key not in base or base[key] != value]
    removed = [f"~{key}" for key in base if key not in mine]
    auto_root = root_override([])
    changed = [c for c in changed if not (auto_root and c == auto_root[0])]
    return " ".join(["python", "-m", "obesity.train", *map(shlex.quote, groups + changed + removed)])


def _default_choice(group: str) -> str:
    if group not in _DEFAULTS:
        _DEFAULTS.update({g: compose()[g].name for g in GROUPS})
    return _DEFAULTS[group]


_DEFAULTS: dict[str, str] = {}


def _flat(cfg: DictConfig) -> dict[str, Any]:
    return dict(flatten(plain(cfg, resolve=False)))
