"""Real Optuna sweeps through Hydra multirun: the MLflow tree, resume, kill -9, joblib, grids."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.helpers import (
    RAW_MD5,
    ROOT,
    STUDY,
    SWEEP,
    compose_train,
    load_study,
    mlflow_client,
    run_sweep,
    wait_until,
)

pytestmark = pytest.mark.slow  # real sweeps in subprocesses: ~1.5 min
# A pruner that stops every trial after its first fold (no running F1 reaches 2): pruning that
# does not depend on what the sampler draws.
ALWAYS_PRUNE = ["hydra/sweeper/pruner=threshold", "hydra.sweeper.pruner.lower=2.0"]


def runs_of(client, filter_string=""):
    exp = client.get_experiment_by_name("obesity")
    return client.search_runs([exp.experiment_id], filter_string, max_results=1000)


def test_sweep_logs_one_tree_and_registers_a_champion(swept):
    outputs, proc = swept
    client = mlflow_client(outputs)
    parents = runs_of(client, "tags.sweep = 'true'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["study"] == STUDY and "sqlite" in parent.data.tags["storage"]
    assert parent.data.params["sampler"] == "optuna.samplers.TPESampler"
    assert parent.data.params["n_trials"] == "3"
    assert parent.data.metrics["trials_complete"] == 3
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert {"sweep/trials.csv", "sweep/optimization_history.png", "sweep/param_importances.png",
            "sweep/parallel_coordinate.png", "sweep/contour.png", "sweep/sweeper.yaml"} <= artifacts

    children = runs_of(client, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    trials = sorted(int(r.data.tags["trial"]) for r in children if "trial" in r.data.tags)
    assert trials == [0, 1, 2]
    for child in children:
        assert child.info.status == "FINISHED"
        assert "cv_f1_macro_mean" in child.data.metrics
    trial_runs = [r for r in children if "trial" in r.data.tags]
    assert {r.data.tags["threads"] for r in trial_runs} == {"1"}  # a core each, never all of them
    assert "1 of 3 trials done; best" in proc.stderr  # a count, beside 0-based trial numbers
    assert not any(k.startswith("test_") for r in trial_runs for k in r.data.metrics)
    assert not any(client.list_artifacts(r.info.run_id, "model") for r in trial_runs)

    best = int(parent.data.tags["best_trial"])
    study = load_study(outputs, STUDY)
    assert best == study.best_trial.number
    assert parent.data.metrics["best_cv_f1_macro_mean"] == study.best_value

    version = client.get_model_version_by_alias("obesity_full", "champion")
    assert version.version == client.get_model_version_by_alias("obesity_full", "challenger").version
    tags = version.tags
    assert tags["validation_status"] == "approved" and float(tags["test_f1_macro"]) >= 0.85
    assert tags["data_md5"] == RAW_MD5
    assert tags["study"] == STUDY and tags["sweep_run_id"] == parent.info.run_id
    assert tags["refit_of_trial"] == str(best) and tags["git_commit"]
    # the card was written inside the running Hydra app (its command is composed there)
    assert tags["card"] == "card/README.md", tags.get("card")
    card = client.download_artifacts(version.run_id, "card/README.md", str(outputs))
    assert "python -m obesity.train data=full model=rf" in Path(card).read_text()
    assert "baseline_cv_f1_macro_mean" in parent.data.metrics
    refit = client.get_run(version.run_id)
    assert refit.data.tags["mlflow.parentRunId"] == parent.info.run_id
    # the refit is the best trial's exact config (model and data params), its CV the trial's
    # record (not fitted twice), now with a test score
    [best_trial] = [r for r in trial_runs if r.data.tags["trial"] == str(best)]
    assert refit.data.tags["cv_of"] == best_trial.info.run_id
    assert {k: v for k, v in refit.data.params.items() if k.startswith(("model.", "data."))} == \
        {k: v for k, v in best_trial.data.params.items() if k.startswith(("model.", "data."))}
    assert refit.data.metrics["cv_f1_macro_mean"] == study.best_value
    assert "test_f1_macro" in refit.data.metrics
    assert "n_trials=3 trials finished; running 3 more" in proc.stderr


def test_rerun_resumes_the_same_study_up_to_n_trials(tmp_path):
    outputs = tmp_path  # its own study: the shared sweep stays as its own test expects it
    first = run_sweep([*SWEEP[:1], "promote=false", *SWEEP[1:]], outputs)
    assert first.returncode == 0, first.stderr[-3000:]
    proc = run_sweep([*SWEEP[:1], "hydra.sweeper.n_trials=4", *SWEEP[2:]], outputs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3 of n_trials=4 trials finished; running 1 more" in proc.stderr
    study = load_study(outputs, STUDY)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    # the resumed sampler does not replay the first invocation's start-up trials
    assert study.trials[3].params != study.trials[0].params

    again = run_sweep([*SWEEP[:1], "hydra.sweeper.n_trials=4", *SWEEP[2:],
                       "hydra/sweeper/pruner=none"], outputs)
    assert again.returncode == 0
    assert "4 of n_trials=4 trials finished; running 0 more" in again.stderr
    # a pruner given to a study that runs nothing more is said to change nothing
    assert ("already holds its n_trials=4: hydra/sweeper/pruner=none changes nothing; give the "
            "sweep its own hydra.sweeper.study_name") in again.stderr
    assert len(load_study(outputs, STUDY).trials) == 4


def _trial_states(outputs: Path) -> list[str]:
    """The study's trial states, read straight from its sqlite file (milliseconds: a poll must
    not be slower than the trial it waits for)."""
    import sqlite3

    storage = compose_train([], outputs).registry.study_storage.removeprefix("sqlite:///")
    if not Path(storage).is_file():
        return []
    with contextlib.closing(sqlite3.connect(storage, timeout=5)) as db:
        try:
            return [state for (state,) in db.execute("SELECT state FROM trials")]
        except sqlite3.OperationalError:  # the tables do not exist yet
            return []


def _kill_mid_trial(args: list[str], outputs: Path) -> list[str]:
    """Start the sweep, kill -9 it while one trial is complete and another running; the states
    left behind (read after the kill)."""
    cmd = [sys.executable, "-m", "obesity.train", "-m", f"paths.root={ROOT}",
           f"paths.outputs={outputs}", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    def mid_trial() -> bool:
        states = _trial_states(outputs)
        return "COMPLETE" in states and "RUNNING" in states

    # the moment, or the sweep ended first (then the caller tries again)
    wait_until(lambda: mid_trial() or proc.poll() is not None, 240)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return _trial_states(outputs)


def test_kill_9_then_rerun_finishes_the_study_and_leaves_nothing_running(tmp_path):
    # a dead sweep's trial stops beating: stale after grace_period, failed and retried
    args = ["sweep=rf", "hydra.sweeper.n_trials=3", "cv_folds=2", "model.n_estimators=150",
            "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2"]
    for attempt in range(3):  # a trial may finish between the last poll and the kill: again
        outputs = tmp_path / str(attempt)
        states = _kill_mid_trial(args, outputs)
        if "COMPLETE" in states and "RUNNING" in states:
            break
    assert "COMPLETE" in states and "RUNNING" in states, states
    client = mlflow_client(outputs)
    assert runs_of(client, "attributes.status = 'RUNNING'")  # the dead sweep's parent, at least
    completed_before = [t.number for t in load_study(outputs, STUDY).trials
                        if t.state == TrialState.COMPLETE]

    rerun = run_sweep(args, outputs)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "stopped beating for grace_period=2s" in rerun.stderr
    trials = load_study(outputs, STUDY).trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    complete = [t.number for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and set(completed_before) <= set(complete)
    assert not runs_of(client, "attributes.status = 'RUNNING'")
    assert runs_of(client, "attributes.status = 'KILLED'")


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # we beat, not optimize()
def test_a_trial_left_running_by_a_dead_worker_on_another_host_is_retried_and_promoted(tmp_path):
    """A worker on another host asked for a trial, beat for it, then died (its host:pid means
    nothing here); another left one from a sweep that never beat. Both go stale after
    grace_period: failed, the beating one retried, and the study's best is promoted."""
    import optuna

    from obesity.compat.optuna_storage import record_heartbeat
    from obesity.sweep.study import BEATS, storage
    from obesity.sweep.sweeper import Heartbeat

    url = compose_train([], tmp_path).registry.study_storage
    study = optuna.create_study(study_name="sweep-lr_data-full", direction="maximize",
                                storage=storage(url, Heartbeat(1, 2, 2)))
    dead = study.ask()
    record_heartbeat(study, dead)
    dead.set_user_attr(BEATS, 1)
    dead.set_user_attr("owner", "another-host:1")
    legacy = study.ask()  # no heartbeat at all
    proc = run_sweep(["sweep=lr", "hydra.sweeper.n_trials=3", "cv_folds=2",
                      "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"trial(s) [{dead.number}, {legacy.number}] stopped beating" in proc.stderr
    trials = load_study(tmp_path, "sweep-lr_data-full").trials
    states = {t.number: t.state for t in trials}
    assert states[dead.number] == states[legacy.number] == TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert sum(s == TrialState.COMPLETE for s in states.values()) == 3
    assert mlflow_client(tmp_path).get_model_version_by_alias("obesity_full", "champion")


@pytest.mark.parametrize("bad", ["model.n_estimators=0", "data.path={small}"])
def test_a_sweep_that_every_trial_would_refuse_stops_before_it_starts(tmp_path, bad):
    small = tmp_path / "small.csv"
    small.write_text("\n".join((ROOT / "data/raw/ObesityDataSet_raw_and_data_sinthetic.csv")
                               .read_text().splitlines()[:30]) + "\n")
    proc = run_sweep(["sweep=rf", "hydra.sweeper.n_trials=2", bad.format(small=small)],
                     tmp_path / "out")
    assert proc.returncode == 1, proc.stderr[-3000:]
    said = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(said) == 1 and ("n_estimators" in said[0] or "small.csv" in said[0]), said
    assert not (tmp_path / "out" / "mlflow.db").exists()  # no parent run, no FAILED trial
    assert not (ROOT / "mlflow.db").exists()  # nor MLflow's default store in the working dir


def test_joblib_launcher_runs_trials_in_parallel_without_collisions(tmp_path):
    proc = run_sweep(["sweep=rf", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
                      "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "cv_folds=3",
                      "model.n_estimators=40", "promote=false", *ALWAYS_PRUNE], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow_client(tmp_path)
    trials = runs_of(client, "tags.trial != ''")
    assert sorted(r.data.tags["trial"] for r in trials) == ["0", "1", "2", "3"]
    # the loky workers found their trials in the study and were pruned there after one fold
    study = load_study(tmp_path, STUDY)
    assert [(t.state, len(t.intermediate_values)) for t in study.trials] == [(TrialState.PRUNED, 1)] * 4
    assert all(r.info.status == "FINISHED" and r.data.tags["pruned"] == "true" for r in trials)
    assert len({r.data.tags["owner"] for r in trials}) == 2  # two worker processes
    job_dirs = {p.parent for p in tmp_path.glob("sweeps/*/*/*/.hydra")}
    assert len(job_dirs) == 4


def test_plain_grid_is_one_tree_and_promotes_its_best_run(tmp_path):
    proc = run_sweep(["model=lr", "model.C=0.05,20", "cv_folds=3"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow_client(tmp_path)
    parent = runs_of(client, "tags.sweep = 'true'")[0]
    children = runs_of(client, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_c = {r.data.params["model.C"]: r for r in children if "refit_of" not in r.data.tags}
    assert set(by_c) == {"0.05", "20.0"}
    best = max(by_c.values(), key=lambda r: r.data.metrics["cv_f1_macro_mean"])
    assert parent.data.tags["best_run"] == best.info.run_id
    version = client.get_model_version_by_alias("obesity_full", "champion")
    assert version.tags["refit_of"] == best.info.run_id
    [said] = [line for line in proc.stderr.splitlines() if "grid: 2 runs by cv_f1_macro_mean" in line]
    assert said.index("model.C=20") < said.index("model.C=0.05")  # best first, with its score


def test_two_workers_started_together_on_fresh_stores_share_one_study_exactly(tmp_path):
    """Two sweep processes at the same moment, one fresh sqlite pair of stores: each opens its
    parent run (the store is created once, under a lock), the study gets exactly n_trials, and
    no two trials draw the same parameters (each batch is seeded under the study's lock)."""
    n_trials = 6
    command = [sys.executable, "-m", "obesity.train", f"paths.root={ROOT}",
               f"paths.outputs={tmp_path}", "-m", "sweep=lr", f"hydra.sweeper.n_trials={n_trials}",
               "cv_folds=2", "promote=false"]
    workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    logs = [w.communicate(timeout=600)[1] for w in workers]
    for worker, err in zip(workers, logs, strict=True):
        assert worker.returncode == 0, err[-3000:]
        assert "Traceback" not in err and "already exists" not in err

    trials = load_study(tmp_path, "sweep-lr_data-full").trials
    assert sorted(t.number for t in trials) == list(range(n_trials))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    drawn = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(drawn)) == n_trials, drawn

    client = mlflow_client(tmp_path)
    parents = {r.info.run_id for r in runs_of(client, "tags.sweep = 'true'")}
    assert len(parents) == 2
    children = runs_of(client, "tags.trial != ''")
    assert sorted(int(r.data.tags["trial"]) for r in children) == list(range(n_trials))
    assert {r.data.tags["mlflow.parentRunId"] for r in children} <= parents


def test_median_pruning_stops_trials_early_and_the_parent_counts_the_folds(tmp_path):
    proc = run_sweep(["sweep=rf", "hydra.sweeper.n_trials=5", "cv_folds=4", "model.n_estimators=40",
                      "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2",
                      "hydra.sweeper.pruner.n_warmup_steps=0"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = load_study(tmp_path, STUDY)
    states = [t.state for t in study.trials]
    assert len(states) == 5 and TrialState.PRUNED in states and TrialState.FAIL not in states
    client = mlflow_client(tmp_path)
    runs = {int(r.data.tags["trial"]): r for r in runs_of(client, "tags.trial != ''")}
    fitted = 0
    for t in study.trials:
        run = runs[t.number]
        assert run.info.status == "FINISHED"  # a pruned trial is not a failed run
        if t.state == TrialState.PRUNED:
            folds = len(t.intermediate_values)  # it stopped after the fold it reported last
            assert 1 <= folds < 4 and run.data.tags["pruned"] == "true"
            assert run.data.tags["pruned_after_folds"] == str(folds)
            # its study value and its run's partial score: the running mean it was pruned at
            assert t.value == pytest.approx(run.data.metrics["cv_f1_macro_mean"])
            assert f"trial {t.number} pruned: cv_f1_macro_mean" in proc.stderr
        else:
            folds = 4
            assert "pruned" not in run.data.tags
        assert run.data.metrics["cv_folds_fitted"] == folds
        fitted += folds
    [parent] = runs_of(client, "tags.sweep = 'true'")
    metrics = parent.data.metrics
    assert metrics["trials_pruned"] == states.count(TrialState.PRUNED)
    assert metrics["trials_complete"] == states.count(TrialState.COMPLETE)
    assert (metrics["folds_fitted"], metrics["folds_without_pruning"]) == (fitted, 20)
    # a pruned trial is not a failed job: no "Job failed" traceback in any trial's log
    logs = list(tmp_path.glob("sweeps/**/train.log"))
    assert len(logs) == 5 and not any("Job failed" in log.read_text() for log in logs)
    assert client.get_model_version_by_alias("obesity_full", "champion")  # the best was promoted


def test_a_new_study_starts_from_the_champions_parameters(tmp_path):
    from tests.helpers import register

    champion = {"model.n_estimators": 100, "model.max_depth": 10, "model.max_features": 0.5,
                "model.min_samples_leaf": 2, "model.criterion": "entropy", "model.bootstrap": True,
                "model.max_samples": 0.8}
    result = register(tmp_path, ["model=rf", *(f"{k}={v}" for k, v in champion.items())])
    assert result.champion == "1"
    proc = run_sweep(["sweep=rf", "hydra.sweeper.n_trials=2", "cv_folds=2", "promote=false",
                      "hydra.sweeper.study_name=warm"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "study warm: warm start: trial 0 runs the parameters of obesity_full@champion" in proc.stderr
    first, second = load_study(tmp_path, "warm").trials
    assert first.params == champion and second.params != champion
    # the same parameters, folds and seed as the champion's run: its very CV score to beat
    client = mlflow_client(tmp_path)
    version = client.get_model_version("obesity_full", "1")
    assert first.value == client.get_run(version.run_id).data.metrics["cv_f1_macro_mean"]
    # that trial won: it is the champion's own model on the same data, never registered again
    from tests.helpers import registry_cli

    [run] = runs_of(client, "tags.study = 'warm' and tags.trial = '0'")
    again = registry_cli(tmp_path, "register", run.info.run_id)
    assert again.returncode == 0 and "is champion version 1 again" in again.stdout, again
    assert len(client.search_model_versions("name = 'obesity_full'")) == 1
    cold = run_sweep(["sweep=rf", "hydra.sweeper.n_trials=1", "cv_folds=2", "promote=false",
                      "hydra.sweeper.study_name=cold", "hydra.sweeper.warm_start=false"], tmp_path)
    assert cold.returncode == 0 and "warm start" not in cold.stderr
    assert load_study(tmp_path, "cold").trials[0].params != champion


def test_optuna_dashboard_serves_a_real_study(swept, tmp_path):
    """docs/sweeps.md's `optuna-dashboard sqlite:///outputs/optuna.db` on a real sweep's storage
    (loopback only): its API lists the study and each trial with the value the study holds."""
    import httpx

    from obesity.testing import local_servers

    outputs, _ = swept
    storage = compose_train([], outputs).registry.study_storage
    trials = load_study(outputs, STUDY).trials
    expected = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}
    base, log = f"http://127.0.0.1:{local_servers.free_port()}", tmp_path / "dashboard.log"
    proc = local_servers.start([str(Path(sys.executable).with_name("optuna-dashboard")), storage,
                                "--host", "127.0.0.1", "--port", base.rsplit(":", 1)[1]], log)
    try:
        local_servers.wait_for(lambda: httpx.get(f"{base}/api/studies").status_code == 200,
                               "optuna-dashboard", proc, log, timeout=60)
        studies = httpx.get(f"{base}/api/studies").json()["study_summaries"]
        (study,) = [s for s in studies if s["study_name"] == STUDY]
        detail = httpx.get(f"{base}/api/studies/{study['study_id']}").json()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    shown = {t["number"]: t["values"][0] for t in detail["trials"] if t["state"] == "Complete"}
    assert shown == pytest.approx(expected) and len(expected) == 3
    assert {p["name"] for p in detail["trials"][0]["params"]} == set(trials[0].params)
