"""Throwaway PostgreSQL and MLflow tracking servers and a one-node SLURM cluster on loopback, for
tests and benchmarks.

    python -m obesity.testing.local_servers      # start both, print the env vars to use, Ctrl-C stops

PostgreSQL comes from Debian's package (scripts/setup.sh installs it); its data dir is a tmp
dir; as root the server runs as the `postgres` user (it refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

VENV_ENV = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
            # mlflow starts its web server by name: the venv's bin must be on PATH
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], what: str, proc: subprocess.Popen,
             timeout: float = 180, interval: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{proc.stdout.read() if proc.stdout else ''}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    raise RuntimeError(f"{what} not up after {timeout}s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def postgres(databases: tuple[str, ...] = ("optuna", "mlflow")) -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 with `databases`; yields its base URL (no database)."""
    import psycopg2

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        raise RuntimeError("PostgreSQL is not installed: run `bash scripts/setup.sh`")
    bin_dir = Path(bins[-1])
    home = Path(tempfile.mkdtemp(prefix="obesity-pg-"))  # /tmp: readable by the postgres user
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(home, "postgres")
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(home / "db"), "-U",
                    "postgres", "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [*as_postgres, str(bin_dir / "postgres"), "-D", str(home / "db"), "-h", "127.0.0.1",
         "-p", str(port), "-k", str(home), "-c", "fsync=off", "-c", "max_connections=200"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"postgresql://postgres@127.0.0.1:{port}"
    try:
        wait_for(lambda: psycopg2.connect(f"{url}/postgres").close() is None, "postgres", server)
        connection = psycopg2.connect(f"{url}/postgres")
        connection.autocommit = True
        for database in databases:
            connection.cursor().execute(f"CREATE DATABASE {database}")
        connection.close()
        yield url
    finally:
        _stop(server)
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend_uri: str, artifacts: Path, workers: int = 2) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with `backend_uri`, proxying artifacts in `artifacts`."""
    import httpx

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        env=VENV_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200,
                 "mlflow server", server)
        yield url
    finally:
        _stop(server)



SLURM_CONF = """ClusterName=obesity-local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={home}/munge.socket
StateSaveLocation={home}/state
SlurmdSpoolDir={home}/spool
SlurmctldPidFile={home}/slurmctld.pid
SlurmdPidFile={home}/slurmd.pid
SlurmctldLogFile={home}/slurmctld.log
SlurmdLogFile={home}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@contextlib.contextmanager
def slurm_cluster(cpus: int = 2, memory_mb: int = 8000) -> Iterator[dict[str, str]]:
    """A one-node SLURM cluster (Debian's slurm-wlm and munge; root: slurmd runs jobs as their
    users) with every daemon on 127.0.0.1 and its files in a tmp dir; yields the environment
    that points `sbatch`, `squeue`, `scancel` and submitit at it (SLURM_CONF)."""
    if os.geteuid() != 0 or not shutil.which("slurmctld") or not shutil.which("munged"):
        raise RuntimeError("a local SLURM cluster needs root and Debian's slurm-wlm and munge "
                           "(bash scripts/setup.sh installs them)")
    home = Path(tempfile.mkdtemp(prefix="obesity-slurm-"))
    for folder in ("state", "spool"):
        (home / folder).mkdir()
    key = home / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    conf = home / "slurm.conf"
    conf.write_text(SLURM_CONF.format(home=home, ctld_port=free_port(), d_port=free_port(),
                                      cpus=cpus, memory_mb=memory_mb))
    env = {**VENV_ENV, "SLURM_CONF": str(conf)}
    started = []
    try:
        for command in (
                ["munged", "--foreground", "--force", f"--socket={home}/munge.socket",
                 f"--key-file={key}", f"--log-file={home}/munged.log",
                 f"--pid-file={home}/munged.pid", f"--seed-file={home}/munged.seed"],
                ["slurmctld", "-D", "-f", str(conf)],
                ["slurmd", "-D", "-N", "localhost", "-f", str(conf)]):
            started.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True))
            if command[0] == "munged":
                wait_for(lambda: (home / "munge.socket").exists(), "munged", started[-1])

        def idle() -> bool:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                                   text=True, timeout=10).stdout.strip()
            return state == "idle"

        wait_for(idle, "slurmd", started[-1], timeout=60)
        yield env
    finally:
        for proc in reversed(started):
            _stop(proc)
        shutil.rmtree(home, ignore_errors=True)

if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="obesity-artifacts-") as artifacts, postgres() as pg, \
            mlflow_server(f"{pg}/mlflow", Path(artifacts)) as tracking:
        print(f"export OPTUNA_STORAGE={pg}/optuna MLFLOW_TRACKING_URI={tracking}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
