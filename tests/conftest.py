"""Shared fixtures: the real configs composed into tmp dirs, and one real trained model."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from obesity.config.compose import compose

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
RAW_CSV = ROOT / "data" / "raw" / "ObesityDataSet_raw_and_data_sinthetic.csv"
# the md5 the DVC pointer pins (never written out in a test: a new data version changes one file)
RAW_MD5 = yaml.safe_load(RAW_CSV.with_name(RAW_CSV.name + ".dvc").read_text())["outs"][0]["md5"]
# Small but real: the real data, the real pipeline, fewer trees and folds to keep the suite fast.
FAST = ["model.n_estimators=60", "cv_folds=3"]


def wait_until(check, timeout: float = 60) -> bool:
    """Poll `check` until it holds (True) or `timeout` seconds pass (False): tests wait on
    conditions, never on fixed sleeps, so a busy machine only makes a wait longer."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def other_population(rows: int, seed: int):
    """Labelled people the project has never seen, made from the real file: 25 years older,
    weights moved by up to 8%, and labelled by lower BMI cut-offs (18.5, 23, 25, 27.5, 32.5,
    37.5: those some countries use for Asian populations) than the data's (18.5, 25, 27, 30, 35,
    40). A model of the original labels disagrees with a good share of them; a model that
    learns from some of them can learn their rule."""
    import numpy as np
    import pandas as pd

    from obesity.data.contract import CLASSES

    rng = np.random.default_rng(seed)
    people = pd.read_csv(RAW_CSV).sample(rows, replace=True, random_state=seed)
    people = people.reset_index(drop=True)
    people["Age"] = (people["Age"] + 25).clip(upper=100).round(1)
    people["Weight"] = (people["Weight"] * rng.uniform(0.92, 1.08, rows)).clip(20, 300).round(1)
    bmi = people["Weight"] / people["Height"] ** 2
    cuts = [18.5, 23, 25, 27.5, 32.5, 37.5]
    people["NObeyesdad"] = np.array(CLASSES)[np.searchsorted(cuts, bmi, side="right")]
    return people


def compose_train(overrides: list[str], outputs: Path | None = None):
    """configs/train.yaml composed by the project's one composer; stores go under `outputs`."""
    extra = [f"paths.root={ROOT}", *([f"paths.outputs={outputs}"] if outputs is not None else [])]
    return compose([*extra, *overrides])


def compose_serve(outputs: Path, *overrides: str):
    """The service's config; start-up waits for the first model (a user's default listens at
    once and loads in the background), so that a test sees the loaded model right away."""
    return compose([f"paths.outputs={outputs}", "load_wait_s=60", *overrides], config_name="serve")


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


@contextlib.contextmanager
def serving(outputs: Path, *overrides: str, until: str = "/ready") -> Iterator[str]:
    """A real `python -m obesity.serve`, as users start it, on a free loopback port with its
    stores under `outputs`: its base URL once `until` answers 200. Its output goes to a file in
    `outputs` (a pipe nobody reads could fill and stall it). Stopped with SIGTERM, a clean
    shutdown (the prediction log is written)."""
    import httpx

    from obesity.stores import local_servers

    port = local_servers.free_port()
    log = outputs / f"serve-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "obesity.serve", f"paths.root={ROOT}", f"paths.outputs={outputs}",
             f"port={port}", *overrides], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            local_servers.wait_for(lambda: httpx.get(f"{base}{until}").status_code == 200,
                                   "obesity.serve", proc, timeout=90)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{log.read_text()[-3000:]}") from None
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def run_cli(args: list[str], outputs: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m obesity.train ARGS` in a subprocess, all stores and run dirs under `outputs`."""
    cmd = [sys.executable, "-m", "obesity.train", f"paths.root={ROOT}",
           f"paths.outputs={outputs}", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def trained_cli(tmp_path_factory):
    """One real `python -m obesity.train` run (rf on full data) in a tmp store."""
    outputs = tmp_path_factory.mktemp("cli_run")
    proc = run_cli(["model=rf", *FAST], outputs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return outputs, proc


def run_sweep(args: list[str], outputs: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m obesity.train -m ARGS` (a multirun) with its stores under `outputs`."""
    return run_cli(["-m", *args], outputs, timeout)


def mlflow_client(outputs: Path):
    """A client of the MLflow store the `registry` config puts under `outputs`."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(compose_train([], outputs).registry.tracking_uri)


def load_study(outputs: Path, name: str):
    """An Optuna study in the storage the `registry` config puts under `outputs`."""
    import optuna

    return optuna.load_study(study_name=name, storage=compose_train([], outputs).registry.study_storage)


# A real rf sweep, small: few trials, 3 folds, 60 trees (fixed: the rest of the space is searched).
# Shared by the sweep tests.
SWEEP = ["sweep=rf", "hydra.sweeper.n_trials=3", "cv_folds=3", "model.n_estimators=60"]
STUDY = "sweep-rf_data-full"


@pytest.fixture(scope="session")
def swept(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("sweep")
    proc = run_sweep(SWEEP, outputs)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return outputs, proc


# The longest files first: the two xdist workers take files in this order (--dist loadfile), so a
# long file started last cannot leave one worker alone at the end.
LONGEST_FIRST = ("test_sweep", "test_dvc_pipeline", "test_feedback", "test_postgres", "test_serve",
                 "test_monitor", "test_page", "test_registry")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        stem = item.path.stem
        return LONGEST_FIRST.index(stem) if stem in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: tests keep their order inside a file
