"""The stack in containers, for real (Dockerfile, compose.yaml, a Docker daemon): the image is
built, the stack comes up, a sweep runs in a `train` container, the service serves its champion,
the monitor checks the traffic, `down` and `up` keep everything, and two `train` containers on
one study are two hosts: one is killed mid-trial, the other finishes the study and promotes once.

    python -m pytest tests/docker       # after `bash scripts/setup.sh --docker` (.ci/run does both)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from obesity.testing.local_servers import free_port
from tests.helpers import RAW_CSV, ROOT, wait_until

pytestmark = pytest.mark.docker
IMAGE = "obesity:test"
# What the image is built from (the Dockerfile's COPYs; .dockerignore allows only these)
CONTEXT = ["Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock", "README.md", "configs",
           "hydra_plugins", "obesity", "docker/ca"]
PERSON = json.loads((ROOT / "docs" / "person.json").read_text())  # the README's curl sends it
# small but real: the real data, the real pipeline
SWEEP = ["-m", "sweep=rf", "hydra.sweeper.n_trials=2", "cv_folds=2", "model.n_estimators=20"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
        check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-2000:]}"
                             f"\n{done.stderr[-3000:]}")
    return done


class Stack:
    """One compose project of this checkout's compose.yaml, on a free loopback port."""

    def __init__(self, tmp: Path) -> None:
        v2 = subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
        self.compose = ["docker", "compose"] if v2 else ["docker-compose"]
        self.project = f"obesity-test-{uuid.uuid4().hex[:8]}"
        self.token = secrets.token_hex(16)
        tokens = tmp / "api-tokens"
        tokens.write_text(self.token + "\n")
        self.port = free_port()
        self.env = {**os.environ, "COMPOSE_PROJECT_NAME": self.project, "OBESITY_IMAGE": IMAGE,
                    "OBESITY_PORT": str(self.port), "OBESITY_BIND": "127.0.0.1",
                    "POSTGRES_PASSWORD": secrets.token_hex(12),
                    "OBESITY_API_TOKENS_FILE": str(tokens), "OBESITY_DATA": str(RAW_CSV.parents[1])}
        self.base = f"http://127.0.0.1:{self.port}"

    def __call__(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return run(*self.compose, "-f", str(ROOT / "compose.yaml"), *args, env=self.env, **kw)

    def sql(self, database: str, query: str) -> str:
        return self("exec", "-T", "db", "psql", "-U", "obesity", "-d", database, "-tAc",
                    query).stdout.strip()

    def answers(self, path: str) -> bool:
        """GET `path` is 200 (a service still starting resets the connection: not yet)."""
        try:
            return httpx.get(f"{self.base}{path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self) -> bool:
        return self.answers("/ready")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker daemon: `bash scripts/setup.sh --docker` installs and starts one")
    run("bash", "scripts/docker_base.sh", timeout=600)  # the base images, when missing
    context = tmp_path_factory.mktemp("context")  # the checkout is never written to
    for name in CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, context / name)
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")  # this machine's proxy CA is in it
    if bundle.is_file():
        shutil.copy(bundle, context / "docker" / "ca" / "host-bundle.crt")
    run("docker", "build", "--network", "host", "-t", IMAGE, str(context), timeout=1200)
    stack = Stack(tmp_path_factory.mktemp("stack"))
    try:
        yield stack
    finally:
        stack("down", "-v", "--remove-orphans", check=False, timeout=120)


def test_the_stack_trains_serves_monitors_and_keeps_its_state(stack):
    stack("up", "-d", "--no-build", timeout=300)
    assert wait_until(lambda: stack.answers("/health"), 120)
    published = {service: run("docker", "port", stack("ps", "-q", service).stdout.strip()).stdout
                 for service in ("serve", "tracking", "db")}
    assert published == {"serve": f"8000/tcp -> 127.0.0.1:{stack.port}\n", "tracking": "", "db": ""}

    trained = stack("run", "--rm", "-T", "train", *SWEEP, timeout=600)
    assert "now champion" in trained.stdout + trained.stderr, trained.stderr[-2000:]
    assert wait_until(stack.ready, 120), "the service did not load the champion"
    answer = httpx.post(f"{stack.base}/predict", json=PERSON)
    assert answer.status_code == 200 and answer.json()["model"]["version"] == "1", answer.text
    label = {"request_id": answer.headers["x-request-id"], "label": "Normal_Weight"}
    assert httpx.post(f"{stack.base}/feedback", json=label).status_code in (401, 403)
    stored = httpx.post(f"{stack.base}/feedback", json=label,
                        headers={"Authorization": f"Bearer {stack.token}"})
    assert stored.status_code == 201, stored.text
    checked = stack("run", "--rm", "-T", "monitor", "monitor.min_rows=1", check=False, timeout=300)
    assert checked.returncode in (0, 3), checked.stderr[-2000:]  # no drift, or drift on one row
    assert "summary.json" in checked.stdout + checked.stderr

    logged = stack.sql("predictions", "select count(*) from predictions")
    runs = stack.sql("mlflow", "select count(*) from runs")
    stack("down", timeout=120)  # the volumes stay
    stack("up", "-d", "--no-build", timeout=300)
    assert wait_until(stack.ready, 120), "the champion did not come back"
    served = httpx.get(f"{stack.base}/model").json()
    assert (served["version"], served["alias"]) == ("1", "champion")
    assert stack.sql("predictions", "select count(*) from predictions") == logged != "0"
    assert stack.sql("predictions", "select count(*) from labels") == "1"
    assert stack.sql("mlflow", "select count(*) from runs") == runs


def test_two_train_containers_are_two_hosts_of_one_study(stack):
    """Both sweep one study; one is killed while it runs a trial (its MLflow run RUNNING): the
    other fails that trial once it stops beating, retries it, finishes the study and promotes
    its best trial, once."""
    stack("up", "-d", "--no-build", timeout=300)
    study, trials = "two-hosts", 6
    args = ["-m", "sweep=rf", f"hydra.sweeper.study_name={study}", f"hydra.sweeper.n_trials={trials}",
            "cv_folds=3", "model.n_estimators=300", "hydra.sweeper.heartbeat_interval=1",
            "hydra.sweeper.grace_period=3"]
    names = [f"{stack.project}-{host}" for host in ("a", "b")]
    try:
        for name in names:
            stack("run", "-d", "-T", "--name", name, "train", *args)
        host_a = run("docker", "inspect", "-f", "{{.Config.Hostname}}", names[0]).stdout.strip()
        running_on_a = ("select count(*) from runs r join tags o on o.run_uuid = r.run_uuid and "
                        "o.key = 'owner' join tags t on t.run_uuid = r.run_uuid and t.key = 'trial' "
                        f"where r.status = 'RUNNING' and o.value like '{host_a}:%'")
        assert wait_until(lambda: stack.sql("mlflow", running_on_a) not in ("", "0"), 240)
        run("docker", "kill", names[0])
        finished = run("docker", "wait", names[1], timeout=600).stdout.strip()
        logs = run("docker", "logs", names[1])
        log = logs.stdout + logs.stderr
        assert finished == "0", log[-3000:]
    finally:
        run("docker", "rm", "-f", *names, check=False)
    assert "stopped beating for grace_period=3s" in log, log[-3000:]
    states = stack.sql("optuna", "select t.number || ':' || t.state from trials t join studies s "
                                 f"using (study_id) where s.study_name = '{study}' order by t.number")
    by_number = dict(line.split(":") for line in states.splitlines())
    assert "RUNNING" not in by_number.values() and "FAIL" in by_number.values(), by_number
    taken = [n for n, state in by_number.items() if state in ("COMPLETE", "PRUNED")]
    assert len(taken) == trials, by_number
    drawn = stack.sql("optuna", "select string_agg(p.param_name || '=' || p.param_value, ',' order by "
                                "p.param_name) from trial_params p join trials t using (trial_id) "
                                "join studies s using (study_id) where s.study_name = "
                                f"'{study}' and t.state = 'COMPLETE' group by t.trial_id")
    assert len(set(drawn.splitlines())) == len(drawn.splitlines())  # no draw repeated
    versions = stack.sql("mlflow", "select count(*) from model_version_tags where key = 'study' "
                                   f"and value = '{study}'")
    assert versions == "1"  # promoted once, by whichever worker finished last
