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

from obesity.config.compose import command_line, compose, sweep_command, typed
from obesity.config.schemas import TrainConfig
from obesity.runtime import using


def fit(cfg: DictConfig | TrainConfig) -> Any:
    """Train, evaluate and record `cfg` in MLflow: what `python -m obesity.train` does.

    Returns a `TrainResult`: `run_id`, `metrics`, `objective`, `model` (the Pipeline fitted on
    the train split; None if `evaluate_test` and `log_model` are both false: then only CV ran).
    """
    import hydra.utils

    with using():  # the environment set before MLflow is imported
        from obesity.config import schemas as config
        from obesity.training import job as training

        with hydra.utils.execution_whitelist(config.EXECUTION_WHITELIST):
            return training.run(typed(cfg, TrainConfig),
                                overrides=shlex.split(command_line(cfg))[3:])


def load_data(cfg: DictConfig | TrainConfig | None = None) -> pd.DataFrame:
    """The validated, deduplicated data of `cfg.data` (all 17 columns), as training sees it."""
    from obesity.data.load import load_dataset

    cfg = cfg if cfg is not None else compose()
    return load_dataset(cfg.data.path).frame.copy()  # a copy: a started runtime's cache stays untouched


def load_champion(cfg: DictConfig | TrainConfig | None = None, alias: str | None = None) -> Any:
    """The fitted Pipeline registered as `registry.model_name@alias` (default: champion),
    loaded only if it is a model the framework produced (obesity.model.files)."""
    with using():  # the environment set before MLflow is imported
        return _load_champion(typed(cfg if cfg is not None else compose(), TrainConfig), alias)


def _load_champion(train: TrainConfig, alias: str | None) -> Any:
    from mlflow.tracking import MlflowClient

    from obesity.errors import RegistryError
    from obesity.model import files as model_files
    from obesity.registry import aliases
    from obesity.stores import locations, tracking

    reg = train.registry
    alias = alias or reg.champion_alias
    tracking.setup(reg)
    version = aliases.alias_version(MlflowClient(), reg.model_name, alias)
    if version is None:
        raise RegistryError(
            f"no {reg.model_name}@{alias} in {locations.redact(reg.tracking_uri)}: run a sweep "
            f"({sweep_command(train.data.name)}) or python -m obesity.registry promote VERSION")
    return model_files.load_pipeline(reg.model_name, version.version)
