"""Beyond one machine, for real: a PostgreSQL server and an `mlflow server` on loopback, and two
sweep workers on one study (`pytest -k postgres`). Nothing mocked.

PostgreSQL comes from Debian's package (scripts/setup.sh installs it); its data dir is a tmp dir.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from obesity.stores.locks import db_lock
from obesity.testing import local_servers
from tests.helpers import ROOT

N_TRIALS = 8
STUDY = "sweep-rf_data-full"
WORKER = ["-m", "sweep=rf", "registry=server", f"hydra.sweeper.n_trials={N_TRIALS}",
          "hydra.sweeper.n_jobs=1", "cv_folds=2",
          "model.n_estimators=40",  # fixed: the rest of the space is searched
          # fold-level pruning across both workers: trials report to the shared study
          "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2",
          "hydra.sweeper.pruner.n_warmup_steps=0"]
ENV = local_servers.VENV_ENV
pytestmark = pytest.mark.slow  # a real PostgreSQL and mlflow server: ~40 s


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on 127.0.0.1 with databases `optuna`, `mlflow` and
    `predictions` (the services' log and its labels)."""
    with local_servers.postgres(("optuna", "mlflow", "predictions")) as url:
        yield url


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    """`mlflow server` backed by PostgreSQL, serving artifacts from a tmp dir."""
    with local_servers.mlflow_server(f"{postgres}/mlflow", tmp_path_factory.mktemp("artifacts")) as url:
        yield url


def try_lock(url: str, name: str) -> bool:
    """Could another process take `db_lock(url, name)` right now? Asked without waiting
    (pg_try_advisory_lock, flock LOCK_NB) and let go at once: an outcome, not a duration."""
    import fcntl

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from obesity.stores import locks

    if make_url(url).get_backend_name() == "sqlite":
        database = Path(make_url(url).database or "")
        with open(database.with_name(f"{database.name}.{name.replace(':', '_')}.lock"), "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(f, fcntl.LOCK_UN)
            return True
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            key = {"key": locks._key(name)}
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar()
            if taken:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            return bool(taken)
    finally:
        engine.dispose()


def assert_exclusive(url: str) -> None:
    """A process holds the lock until told to let go: meanwhile nobody else can take it, another
    name is another lock, and after it let go the lock is free."""
    code = ("import sys; from obesity.stores.locks import db_lock\n"
            "with db_lock(sys.argv[1], 'study:x'):\n print('held', flush=True); sys.stdin.readline()\n"
            "print('released', flush=True)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, url], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert not try_lock(url, "study:x")  # held by the other process
    assert try_lock(url, "study:other")  # another name is another lock
    with db_lock(url, "study:other"):
        pass
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"
    holder.wait(timeout=30)
    assert try_lock(url, "study:x")


def test_postgres_lock_is_exclusive_across_processes(postgres):
    assert_exclusive(f"{postgres}/optuna")


def test_sqlite_lock_is_exclusive_across_processes(tmp_path):
    assert_exclusive(f"sqlite:///{tmp_path}/optuna.db")


def test_postgres_two_workers_share_one_study_and_promote_once(postgres, mlflow_server, tmp_path):
    env = {**ENV, "MLFLOW_TRACKING_URI": mlflow_server, "OPTUNA_STORAGE": f"{postgres}/optuna"}
    workers = [subprocess.Popen(
        [sys.executable, "-m", "obesity.train", f"paths.root={ROOT}",
         f"paths.outputs={tmp_path / f'worker{i}'}", *WORKER],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    logs = [w.communicate(timeout=900) for w in workers]
    for worker, (_, err) in zip(workers, logs, strict=True):
        assert worker.returncode == 0, err[-4000:]

    # the study: exactly the total, each number once, nothing left running
    study = optuna.load_study(study_name=STUDY, storage=f"{postgres}/optuna")
    assert sorted(t.number for t in study.trials) == list(range(N_TRIALS))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    drawn = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(drawn)) == N_TRIALS, drawn  # workers started together never repeat a draw

    # MLflow: one parent per worker; every trial exactly once, as a child of a worker's parent
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("obesity").experiment_id
    parents = {r.info.run_id for r in client.search_runs([experiment], "tags.sweep = 'true'")}
    assert len(parents) == 2
    trials = client.search_runs([experiment], f"tags.study = '{STUDY}' and tags.trial != ''",
                                max_results=1000)
    assert sorted(int(r.data.tags["trial"]) for r in trials) == list(range(N_TRIALS))
    # each trial's run FINISHED: a complete one fitted both folds, a pruned one (tagged) the
    # fold it reported to the shared study before the pruner stopped it
    folds = {int(r.data.tags["trial"]): (r.info.status, r.data.metrics["cv_folds_fitted"],
                                         r.data.tags.get("pruned")) for r in trials}
    for t in study.trials:
        pruned = t.state == TrialState.PRUNED
        assert folds[t.number] == ("FINISHED", len(t.intermediate_values) if pruned else 2,
                                   "true" if pruned else None), (t.number, t.state)
    by_parent = {p: sum(r.data.tags["mlflow.parentRunId"] == p for r in trials) for p in parents}
    assert all(n >= 1 for n in by_parent.values()), by_parent  # both workers did trials

    # one promotion: one version for the study, champion and challenger on it
    versions = client.search_model_versions("name = 'obesity_full'")
    assert len(versions) == 1 and versions[0].tags["study"] == STUDY
    assert client.get_model_version_by_alias("obesity_full", "champion").version == \
        versions[0].version
    promoted = sum("registered obesity_full version" in err for _, err in logs)
    assert promoted == 1
    assert any("the last worker to finish promotes" in err or "registered already" in err
               for _, err in logs)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # we beat, not optimize()
def test_a_silent_workers_trial_on_postgresql_is_failed_and_retried(postgres):
    """The heartbeat on a server database: a trial whose worker (any host) stopped beating is
    failed once its grace period passed, and comes back as a WAITING retry."""
    from obesity.sweep.study import BEATS, fail_stale_trials, storage
    from obesity.sweep.sweeper import Heartbeat

    study = optuna.create_study(study_name="heartbeat", storage=storage(f"{postgres}/optuna",
                                                                        Heartbeat(1, 1, 1)))
    alive, dead = study.ask(), study.ask()
    for trial in (alive, dead):
        study._storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr(BEATS, 1)
    deadline = time.monotonic() + 30
    failed: list[int] = []
    while not failed and time.monotonic() < deadline:
        study._storage.record_heartbeat(alive._trial_id)  # one worker still beats
        failed = fail_stale_trials(study, 1)
        time.sleep(0.3)
    assert failed == [dead.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states[alive.number] == TrialState.RUNNING and states[dead.number] == TrialState.FAIL
    [retry] = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert retry.system_attrs["failed_trial"] == dead.number


def test_labels_on_postgresql_judge_the_served_version_and_export(postgres, tmp_path, monkeypatch):
    """The prediction log and its labels on PostgreSQL (as several replicas share them): labels
    over HTTP, the partial unique index refusing a second label, the monitor's `degraded`, the
    export training reads."""
    import json

    import numpy as np
    from litestar.testing import TestClient

    from obesity.data.load import load_dataset
    from obesity.feedback.export import export
    from obesity.monitoring import job
    from obesity.serving.app import create_app
    from tests.helpers import compose_monitor, compose_serve, other_population, register

    token = "a-token-for-the-postgres-test-0123"
    monkeypatch.setenv("OBESITY_API_TOKENS", token)
    log_url = f"{postgres}/predictions"
    register(tmp_path, ["model=lr"])  # MLflow embedded; the log on the server
    people = other_population(300, seed=21)
    rows = json.loads(people.drop(columns="NObeyesdad").to_json(orient="records"))
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(app=create_app(compose_serve(tmp_path, f"registry.prediction_log={log_url}"))) as client:
        answer = client.post("/predict/batch", json={"rows": rows})
        rid, served = answer.headers["x-request-id"], [p["prediction"] for p in answer.json()["predictions"]]
        csv = "request_id,label,row\n" + "".join(
            f"{rid},{y},{i}\n" for i, y in enumerate(people["NObeyesdad"]))
        answer = client.post("/feedback/csv", content=csv, headers={**auth, "content-type": "text/csv"})
        assert answer.status_code == 201, answer.text
        again = client.post("/feedback", json={"request_id": rid, "row": 5, "label": "Normal_Weight"},
                            headers=auth)
        assert again.status_code == 409 and "have a label already" in again.json()["detail"]
    check = job.run(compose_monitor(tmp_path, f"registry.prediction_log={log_url}",
                                    "monitor.min_rows=1000", "monitor.window=1000"),  # labels only
                    tmp_path / "check")
    judged = check.summary["performance"]["versions"][0]
    assert check.performance == "degraded" and check.exit_code == 5 and judged["rows"] == 300
    direct = float(np.mean(np.array(served) == people["NObeyesdad"].to_numpy()))
    assert judged["scores"]["accuracy"]["value"] == pytest.approx(direct)
    done = export(log_url, "obesity_full", tmp_path / "labels.csv", dvc=False)
    assert done.rows == 300 and load_dataset(done.path).rows_raw == 300
