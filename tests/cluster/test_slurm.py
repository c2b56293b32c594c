"""Sweeps on a real SLURM cluster (one node on loopback: Debian's slurm-wlm and munge, started
here): the sweeper's batches go out as job arrays through hydra/launcher=slurm (submitit), reach
the same study as the basic launcher, and a cancelled array's study is topped up by a rerun.

    python -m pytest tests/cluster -n 0      # root, after `bash scripts/setup.sh` (.ci/run does)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from obesity.testing.local_servers import slurm_cluster
from tests.helpers import ROOT, finished, load_study, wait_until

pytestmark = pytest.mark.cluster
SLURM = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10"]


@pytest.fixture(scope="module")
def slurm():
    with slurm_cluster(cpus=2) as env:
        yield env


def sweep(args: list[str], outputs: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "obesity.train", "-m", f"paths.root={ROOT}",
                             f"paths.outputs={outputs}", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_sweep_on_slurm_runs_job_arrays_and_finds_what_the_basic_launcher_finds(slurm, tmp_path):
    args = ["sweep=lr", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", "cv_folds=2"]
    on_slurm = sweep([*args, *SLURM], tmp_path / "slurm", slurm)
    here = sweep(args, tmp_path / "basic", slurm)
    finished(on_slurm), finished(here)
    studies = [load_study(tmp_path / where, "sweep-lr_data-full") for where in ("slurm", "basic")]
    assert [len(s.trials) for s in studies] == [4, 4]
    assert studies[0].best_value == studies[1].best_value
    assert studies[0].best_params == studies[1].best_params
    # each batch of two trials was one job array: submitit's folders are <array id>_<task>
    tasks = sorted(p.name for p in (tmp_path / "slurm").rglob(".submitit/*_*") if p.is_dir())
    arrays = {name.split("_")[0] for name in tasks}
    assert len(tasks) == 4 and len(arrays) == 2, tasks


def test_a_cancelled_array_is_topped_up_by_a_rerun(slurm, tmp_path):
    args = ["sweep=rf", "hydra.sweeper.n_trials=6", "hydra.sweeper.n_jobs=2", "cv_folds=2",
            "model.n_estimators=300", "hydra.sweeper.heartbeat_interval=1",
            "hydra.sweeper.grace_period=2", *SLURM]
    first = sweep(args, tmp_path, slurm)

    def running_array() -> str:
        queue = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%F"], env=slurm,
                               capture_output=True, text=True).stdout.split()
        return queue[0] if queue else ""

    assert wait_until(lambda: bool(running_array()) or first.poll() is not None, 120)
    array = running_array()
    assert array, "the sweep ended before an array ran"
    subprocess.run(["scancel", array], env=slurm, check=True)
    # Without SLURM's accounting (sacct: no slurmdbd here) submitit cannot see that the array
    # was cancelled and the submitting sweep waits for it: stopped, as its user would.
    assert wait_until(lambda: not running_array(), 60)
    first.terminate()
    first.communicate(timeout=60)
    trials = load_study(tmp_path, "sweep-rf_data-full").trials
    taken_before = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert taken_before < 6

    rerun = finished(sweep(args, tmp_path, slurm))
    assert "stopped beating for grace_period=2s" in rerun, rerun[-3000:]
    trials = load_study(tmp_path, "sweep-rf_data-full").trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 6
    assert "now champion" in rerun
