"""Throwaway PostgreSQL and MLflow tracking servers, a one-node SLURM cluster and a two-node Ray
cluster on loopback, for tests and benchmarks.

    python -m obesity.testing.local_servers      # start both, print the env vars to use, Ctrl-C stops

PostgreSQL comes from Debian's package (scripts/setup.sh installs it); its data dir is a tmp
dir; as root the server runs as the `postgres` user (it refuses to run as root).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VENV_ENV = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
            # mlflow starts its web server by name: the venv's bin must be on PATH
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def start(command: list[str], log: Path, **kwargs: Any) -> subprocess.Popen:
    """A server process writing its output to `log`: a pipe that nobody reads fills up and
    stalls the server mid-request (an mlflow server's access log did)."""
    with open(log, "ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **kwargs)


def wait_for(check: Callable[[], bool], what: str, proc: subprocess.Popen, log: Path | None = None,
             timeout: float = 180, interval: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited:\n{said}")
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
    log = home / "postgres.log"
    server = start(
        [*as_postgres, str(bin_dir / "postgres"), "-D", str(home / "db"), "-h", "127.0.0.1",
         "-p", str(port), "-k", str(home), "-c", "fsync=off", "-c", "max_connections=200"], log)
    url = f"postgresql://postgres@127.0.0.1:{port}"
    try:
        wait_for(lambda: psycopg2.connect(f"{url}/postgres").close() is None, "postgres", server, log)
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
    home = Path(tempfile.mkdtemp(prefix="obesity-mlflow-"))
    log = home / "server.log"
    server = start(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)], log, env=VENV_ENV)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200,
                 "mlflow server", server, log)
        yield url
    finally:
        _stop(server)
        shutil.rmtree(home, ignore_errors=True)



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
            started.append(start(command, home / f"{command[0]}.out", env=env))
            if command[0] == "munged":
                wait_for(lambda: (home / "munge.socket").exists(), "munged", started[-1],
                         home / "munged.log")

        def idle() -> bool:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                                   text=True, timeout=10).stdout.strip()
            return state == "idle"

        wait_for(idle, "slurmd", started[-1], home / "slurmd.log", timeout=60)
        yield env
    finally:
        for proc in reversed(started):
            _stop(proc)
        shutil.rmtree(home, ignore_errors=True)


_CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def loopback_only_network() -> Iterator[None]:
    """This thread, and every process it starts, in a network namespace of its own whose only
    interface is loopback (root): a server that binds the host's address instead of 127.0.0.1
    (Ray advertises the node's IP) still reaches nothing beyond the machine. Left at the end."""
    if os.geteuid() != 0:
        raise RuntimeError("a network namespace of its own needs root")
    libc = ctypes.CDLL(None, use_errno=True)
    host = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(_CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
            yield
        finally:
            if libc.setns(host, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the host's network")
    finally:
        os.close(host)


@dataclass
class RayCluster:
    """A running Ray cluster: its GCS address, the environment that points `ray` and
    hydra/launcher=ray_cluster at it (RAY_ADDRESS), and one `ray start --block` per node."""

    address: str
    env: dict[str, str]
    nodes: list[subprocess.Popen] = field(default_factory=list)

    def alive(self) -> list[str]:
        """The node ids `ray status` lists as active."""
        status = subprocess.run([str(Path(sys.executable).parent / "ray"), "status",
                                 f"--address={self.address}"], env=self.env,
                                capture_output=True, text=True, timeout=60).stdout
        active = status.partition("Active:")[2].partition("Pending:")[0]
        return [word.removeprefix("node_") for word in active.split() if word.startswith("node_")]

    def node_id(self, node: int) -> str:
        """The Ray id of a node (0: the head), read from its raylet's command line."""
        for pid in _tree(self.nodes[node].pid):
            with contextlib.suppress(OSError):
                args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if args[0].endswith(b"/raylet"):
                    return next(a.split(b"=", 1)[1].decode() for a in args
                                if a.startswith(b"--node_id="))
        raise LookupError(f"ray node {node} has no raylet")

    def kill(self, node: int) -> None:
        """kill -9 every process of a node (its raylet, agents and the workers running its
        tasks, which Ray puts in process groups of their own), as a host that is lost."""
        for pid in _tree(self.nodes[node].pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        self.nodes[node].wait()


def _tree(root: int) -> list[int]:
    """`root` and its descendants (a snapshot of /proc: taken before any is killed)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@contextlib.contextmanager
def ray_cluster(nodes: int = 2, cpus_per_node: int = 1) -> Iterator[RayCluster]:
    """`nodes` Ray nodes (a head and workers, each a raylet of its own) on this machine, every
    port on 127.0.0.1: call it inside `loopback_only_network()`, as Ray advertises the host's
    address otherwise. No dashboard, no usage stats, files in a tmp dir."""
    home = Path(tempfile.mkdtemp(prefix="obesity-ray-"))
    port = free_port()
    env = {**VENV_ENV, "RAY_ADDRESS": f"127.0.0.1:{port}", "RAY_USAGE_STATS_ENABLED": "0",
           # a lost node is declared dead within seconds (defaults: ~30 s)
           "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4"}
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}", "--num-gpus=0",
              "--disable-usage-stats", "--object-store-memory=100000000", "--block"]
    cluster = RayCluster(address=env["RAY_ADDRESS"], env=env)
    try:
        for index in range(nodes):
            role = (["--head", f"--port={port}", "--include-dashboard=false",
                     f"--temp-dir={home}"] if index == 0 else [f"--address={cluster.address}"])
            cluster.nodes.append(start([str(Path(sys.executable).parent / "ray"), "start", *role,
                                        *common], home / f"node{index}.log", env=env,
                                       start_new_session=True))
            if index == 0:  # the workers join once the head's GCS answers
                wait_for(lambda: _listening(port),
                         "ray head", cluster.nodes[0], home / "node0.log", timeout=120)
        wait_for(lambda: len(cluster.alive()) == nodes, "ray nodes", cluster.nodes[-1],
                 home / f"node{nodes - 1}.log", timeout=120, interval=0.5)
        yield cluster
    finally:
        for node in range(len(cluster.nodes)):  # a throwaway cluster: nothing to drain
            cluster.kill(node)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="obesity-artifacts-") as artifacts, postgres() as pg, \
            mlflow_server(f"{pg}/mlflow", Path(artifacts)) as tracking:
        print(f"export OPTUNA_STORAGE={pg}/optuna MLFLOW_TRACKING_URI={tracking}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
