"""A real service as users start it, and waiting on conditions instead of fixed sleeps."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.paths import ROOT


def wait_until(check, timeout: float = 60) -> bool:
    """Poll `check` until it holds (True) or `timeout` seconds pass (False): tests wait on
    conditions, never on fixed sleeps, so a busy machine only makes a wait longer."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def finished(proc: subprocess.Popen, timeout: float = 240) -> str:
    """The output of a command started with stdout=PIPE (stderr merged) that must succeed; one
    that hangs is killed and its output shown."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"hung after {timeout}s:\n{out[-6000:]}") from None
    assert proc.returncode == 0, out[-3000:]
    return out


@contextlib.contextmanager
def serving(outputs: Path, *overrides: str, until: str = "/ready") -> Iterator[str]:
    """A real `python -m obesity.serve`, as users start it, on a free loopback port with its
    stores under `outputs`: its base URL once `until` answers 200. Its output goes to a file in
    `outputs` (a pipe nobody reads could fill and stall it). Stopped with SIGTERM, a clean
    shutdown (the prediction log is written)."""
    import httpx

    from obesity.testing import local_servers

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


def metric_value(text: str, name: str) -> float:
    """A sample's value in Prometheus' text format (0 when absent). The counters are the
    process's: a test compares a value with its own earlier reading, never with 0."""
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == name:
            return float(value)
    return 0.0
