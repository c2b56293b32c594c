"""The real configs, composed by the project's one composer with stores under a tmp dir, as the
dataclasses the entrypoints hand to the core (`compose` itself gives Hydra's DictConfig)."""

from __future__ import annotations

from pathlib import Path

from obesity.config.compose import compose, typed
from obesity.config.schemas import MonitorJobConfig, ServeConfig, TrainConfig
from tests.helpers.paths import ROOT

# Small but real: the real data, the real pipeline, fewer trees and folds to keep the suite fast;
# the folds one after the other (for 60 trees, starting the CV's worker processes costs more CPU
# than the folds themselves).
FAST = ["model.n_estimators=60", "cv_folds=3", "n_jobs=1"]


def compose_train(overrides: list[str], outputs: Path | None = None) -> TrainConfig:
    """configs/train.yaml composed by the project's one composer; stores go under `outputs`."""
    extra = [f"paths.root={ROOT}", *([f"paths.outputs={outputs}"] if outputs is not None else [])]
    return typed(compose([*extra, *overrides]), TrainConfig)


def compose_serve(outputs: Path, *overrides: str) -> ServeConfig:
    """The service's config; start-up waits for the first model (a user's default listens at
    once and loads in the background), so that a test sees the loaded model right away."""
    return typed(compose([f"paths.outputs={outputs}", "load_wait_s=60", *overrides],
                         config_name="serve"), ServeConfig)


def compose_monitor(outputs: Path, *overrides: str) -> MonitorJobConfig:
    """`python -m obesity.monitor`'s config with its stores under `outputs`."""
    return typed(compose([f"paths.outputs={outputs}", *overrides], config_name="monitor"),
                 MonitorJobConfig)
