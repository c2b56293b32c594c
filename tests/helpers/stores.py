"""Real runs and registered versions in a test's own stores, and clients of those stores."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

from tests.helpers.configs import compose_train
from tests.helpers.paths import ROOT


def register(outputs: Path, overrides: list[str]):
    """Train `overrides` (2 folds) into the stores under `outputs`, register it, move aliases."""
    from obesity.registry import promote
    from obesity.training import job as training

    cfg = compose_train([*overrides, "cv_folds=2"], outputs)
    return promote.register_and_promote(cfg, training.run(cfg))


def rf_champion(tmp_path_factory, name: str) -> Path:
    """A module's own tmp store whose version 1 (rf, 60 trees, its twin, card and manifest) is
    champion."""
    outputs = tmp_path_factory.mktemp(name)
    register(outputs, ["model=rf", "model.n_estimators=60"])
    return outputs


def run_cli(args: list[str], outputs: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m obesity.train ARGS` in a subprocess, all stores and run dirs under `outputs`."""
    cmd = [sys.executable, "-m", "obesity.train", f"paths.root={ROOT}",
           f"paths.outputs={outputs}", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def run_sweep(args: list[str], outputs: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m obesity.train -m ARGS` (a multirun) with its stores under `outputs`."""
    return run_cli(["-m", *args], outputs, timeout)


# A real rf sweep, small: few trials, 3 folds, 60 trees (fixed: the rest of the space is searched),
# folds one after the other (as FAST in tests.helpers.configs).
SWEEP = ["sweep=rf", "hydra.sweeper.n_trials=3", "cv_folds=3", "model.n_estimators=60", "n_jobs=1"]
STUDY = "sweep-rf_data-full"


def registry_cli(outputs, *args: str) -> subprocess.CompletedProcess:
    """The registry CLI's `main` in this process (imports paid once); exit code, stdout and
    stderr."""
    from obesity.registry import cli as registry_module

    argv = ["-o", f"paths.root={ROOT}", "-o", f"paths.outputs={outputs}", *args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = registry_module.main(argv)
        except SystemExit as exit_:  # argparse: --help, usage errors
            code = exit_.code
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def mlflow_client(outputs: Path):
    """A client of the MLflow store the `registry` config puts under `outputs`."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(compose_train([], outputs).registry.tracking_uri)


def load_study(outputs: Path, name: str):
    """An Optuna study in the storage the `registry` config puts under `outputs`."""
    import optuna

    return optuna.load_study(study_name=name, storage=compose_train([], outputs).registry.study_storage)
