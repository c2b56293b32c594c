"""Sweeps on a real Ray cluster: two nodes (a head and a worker, each a raylet of its own) on
this machine, in a network namespace whose only interface is loopback (Ray advertises the host's
address otherwise), with PostgreSQL and an `mlflow server` as the stores (registry=server).
Trials run as Ray tasks through hydra/launcher=ray_cluster; each trial's run names its node.

    python -m pytest tests/cluster -n 0      # root, after `bash scripts/setup.sh` (.ci/run does)
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from obesity.testing import local_servers
from tests.helpers import ROOT, finished, wait_until

pytestmark = pytest.mark.cluster
RAY = ["registry=server", "hydra/launcher=ray_cluster", "hydra.launcher.ray.remote.num_cpus=1"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The stores and a two-node Ray cluster (one CPU each), started side by side."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    with local_servers.loopback_only_network(), contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(1) as pool:  # threads share the namespace they were made in
            ray = pool.submit(stack.enter_context, local_servers.ray_cluster(nodes=2))
            postgres = stack.enter_context(local_servers.postgres(("optuna", "mlflow")))
            tracking = stack.enter_context(local_servers.mlflow_server(f"{postgres}/mlflow", artifacts))
            cluster = ray.result()
        yield cluster, {**cluster.env, "MLFLOW_TRACKING_URI": tracking,
                        "OPTUNA_STORAGE": f"{postgres}/optuna"}


def sweep(args: list[str], outputs: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "obesity.train", "-m", f"paths.root={ROOT}",
                             f"paths.outputs={outputs}", *args, *RAY], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def trial_runs(env: dict[str, str], study: str) -> list:
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiments = [e.experiment_id for e in client.search_experiments()]
    parents = {r.info.run_id for r in client.search_runs(experiments, f"tags.study = '{study}'")}
    return [r for r in client.search_runs(experiments, "tags.trial != ''", max_results=1000)
            if r.data.tags.get("mlflow.parentRunId") in parents]


def load_study(env: dict[str, str], name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=env["OPTUNA_STORAGE"])


def test_a_sweep_on_ray_runs_its_trials_on_both_nodes(cluster, tmp_path):
    ray, env = cluster
    out = finished(sweep(["sweep=lr", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
                          "cv_folds=2"], tmp_path, env))
    assert "register_new_resolver" not in out  # the plugin's warning, filtered (obesity/compat)
    study = load_study(env, "sweep-lr_data-full")
    assert sorted(t.number for t in study.trials if t.state == TrialState.COMPLETE) == [0, 1, 2, 3]
    runs = trial_runs(env, "sweep-lr_data-full")
    assert sorted(int(r.data.tags["trial"]) for r in runs) == [0, 1, 2, 3]
    # every trial ran as a Ray task, some on the head and some on the worker
    assert {r.data.tags["ray_node"] for r in runs} == {ray.node_id(0), ray.node_id(1)}
    assert out.count("now champion") == 1


def test_a_sweep_survives_the_loss_of_a_node(cluster, tmp_path):
    ray, env = cluster
    study_name = "sweep-rf_data-full"
    worker = ray.node_id(1)
    first = sweep(["sweep=rf", "hydra.sweeper.n_trials=6", "hydra.sweeper.n_jobs=2", "cv_folds=2",
                   "model.n_estimators=300"], tmp_path, env)

    def running_on_worker() -> bool:
        return any(r.info.status == "RUNNING" and r.data.tags.get("ray_node") == worker
                   for r in trial_runs(env, study_name))

    assert wait_until(lambda: first.poll() is not None or running_on_worker(), 180)
    assert first.poll() is None, "the sweep ended before a trial ran on the worker node"
    ray.kill(1)  # every process of the node, as a host that is lost
    assert running_on_worker(), "the trial ended before its node was killed"  # its run, frozen
    out = finished(first)

    # Ray ran the lost task again on the head: the study reached its total, promoted once
    study = load_study(env, study_name)
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials) == 6
    assert out.count("now champion") == 1, out[-3000:]
    runs = trial_runs(env, study_name)
    lost = [r for r in runs if r.info.status == "KILLED"]
    assert lost and all(r.data.tags["ray_node"] == worker for r in lost)
    assert "whose process was lost" in out
    # each trial number has one finished run, whichever node it ended on
    done = sorted(int(r.data.tags["trial"]) for r in runs if r.info.status == "FINISHED")
    assert done == sorted({t.number for t in study.trials if t.state != TrialState.FAIL})
    assert len(ray.alive()) == 1
