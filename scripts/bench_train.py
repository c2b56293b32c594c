"""What the framework costs around the work: the default training run, cold and warm, split by
phase, and the start-up of the commands that should answer at once.

    .venv/bin/python scripts/bench_train.py [--repeats 3] [-- extra overrides]

Every figure is a real process. Training: phases come from the run's own `time_*_s` metrics;
"startup" is the rest of the wall time (interpreter, Hydra, shutdown); "overhead" is wall minus
fit+CV, the framework's share. Start-up: seconds until `--help`, `--cfg job` and a misspelt
override have answered, and until `python -m obesity.serve` answers /health and /ready (its
champion loaded), next to the same run's baselines: the bare interpreter, `import mlflow,
sklearn` (the floor of issue 28) and the libraries a default run loads besides (MLflow's SQL
store, skops, matplotlib).
Goals (issue 28), printed with the ratios: the warm run's overhead and the service until /ready,
each <= 1.5x the `import mlflow, sklearn` floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from obesity.testing import local_servers

ROOT = Path(__file__).resolve().parents[1]

PHASES = ("imports", "data", "store", "fit_cv", "logging")
FLOOR = "import mlflow, sklearn (baseline)"
GOAL = 1.5  # x FLOOR, issue 28
# what a default run imports beyond the floor (MLflow's SQL store, the model's file format,
# figures), in a process whose collector is tuned as the commands tune theirs
RUN_IMPORTS = ("from obesity.runtime import command_line_process; command_line_process(); "
               "import mlflow, sklearn, mlflow.sklearn, skops.io, matplotlib.pyplot; "
               "import mlflow.store.tracking.sqlalchemy_store")
RUN_LIBRARIES = "the libraries a default run loads"


def one_run(outputs: Path, overrides: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "obesity.train", f"paths.outputs={outputs}", *overrides],
                   cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - start
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    from obesity.config.compose import compose

    registry = compose([f"paths.outputs={outputs}"]).registry  # where the run put its stores
    client = MlflowClient(registry.tracking_uri)
    exp = client.get_experiment_by_name(registry.experiment)
    run = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]
    phases = {p: run.data.metrics[f"time_{p}_s"] for p in PHASES}
    return {"wall": wall, **phases, "startup": wall - sum(phases.values()),
            "overhead": wall - phases["fit_cv"], "run_id": run.info.run_id}


def seconds(command: list[str], repeats: int) -> float:
    """Median wall seconds of a command that ends by itself (exit code ignored: some fail on
    purpose, e.g. a misspelt override)."""
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def serve_until_health(outputs: Path, repeats: int, path: str = "/health") -> float:
    import httpx

    walls = []
    for _ in range(repeats):
        port = local_servers.free_port()
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "obesity.serve", f"paths.outputs={outputs}",
                                 f"port={port}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}{path}"
        local_servers.wait_for(lambda url=url: httpx.get(url).status_code == 200, "obesity.serve", proc,
                               timeout=120, interval=0.02)
        walls.append(time.perf_counter() - start)
        proc.terminate()
        proc.wait(timeout=30)
    return statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="warm runs after the cold one")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold = one_run(Path(tmp), args.overrides)
        warm = [one_run(Path(tmp), args.overrides) for _ in range(args.repeats)]
        # a champion for the service to load (what a sweep's end does, for the last run)
        subprocess.run([sys.executable, "-m", "obesity.registry", "-o", f"paths.outputs={tmp}",
                        *[a for o in args.overrides for a in ("-o", o)], "register",
                        warm[-1]["run_id"]], cwd=ROOT, check=True, capture_output=True)
        py = [sys.executable]
        entry = [*py, "-m", "obesity.train", f"paths.outputs={tmp}"]
        startup = {
            "python -c pass (baseline)": seconds([*py, "-c", "pass"], args.repeats),
            FLOOR: seconds([*py, "-c", "import mlflow, sklearn"], args.repeats),
            RUN_LIBRARIES: seconds([*py, "-c", RUN_IMPORTS], args.repeats),
            "obesity.train --help": seconds([*entry, "--help"], args.repeats),
            "obesity.train --cfg job": seconds([*entry, "--cfg", "job"], args.repeats),
            "obesity.train model.max_dept=3": seconds([*entry, "model.max_dept=3"], args.repeats),
            "obesity.serve until /health": serve_until_health(Path(tmp), args.repeats),
            "obesity.serve until /ready": serve_until_health(Path(tmp), args.repeats, "/ready"),
        }
    cols = ["wall", "overhead", "startup", *PHASES]
    print(f"{'training':10}" + "".join(f"{c:>9}" for c in cols))
    print(f"{'cold':10}" + "".join(f"{cold[c]:9.2f}" for c in cols))
    med = {c: statistics.median(w[c] for w in warm) for c in cols}
    print(f"{'warm med':10}" + "".join(f"{med[c]:9.2f}" for c in cols))
    print(f"cold/warm wall ratio: {cold['wall'] / med['wall']:.2f}x; framework share of the warm "
          f"wall: {med['overhead'] / med['wall']:.0%} (seconds; warm = median of {args.repeats})")
    print()
    base = startup["python -c pass (baseline)"]
    print(f"{'start-up (median of ' + str(args.repeats) + ')':<40}{'seconds':>9}{'x python':>10}")
    for name, wall in startup.items():
        print(f"{name:<40}{wall:>9.2f}{wall / base:>9.1f}x")
    print()
    floor = startup[FLOOR]
    for what, wall in (("default run, warm: wall - fit+CV", med["overhead"]),
                       ("obesity.serve until /ready", startup["obesity.serve until /ready"])):
        ratio = wall / floor
        print(f"{what}: {wall:.2f} s = {ratio:.2f}x the floor ({FLOOR}: {floor:.2f} s; "
              f"goal <= {GOAL:.1f}x: {'met' if ratio <= GOAL else 'missed'}; libraries a run loads "
              f"{startup[RUN_LIBRARIES]:.2f} s = {startup[RUN_LIBRARIES] / floor:.2f}x)")


if __name__ == "__main__":
    main()
