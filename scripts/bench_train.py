"""Wall time of the default training run, cold (fresh MLflow store) and warm, split by phase.

    .venv/bin/python scripts/bench_train.py [--repeats 3] [-- extra overrides]

Each run is a real `python -m obesity.train` process. Phases come from the run's own `time_*_s`
metrics; "startup" is the rest of the wall time (interpreter, Hydra compose, shutdown).
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

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("imports", "data", "store", "fit_cv", "logging")


def one_run(outputs: Path, overrides: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "obesity.train", f"paths.outputs={outputs}", *overrides],
                   cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - start
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{outputs}/mlflow.db")
    exp = client.get_experiment_by_name("obesity")
    run = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]
    phases = {p: run.data.metrics[f"time_{p}_s"] for p in PHASES}
    return {"wall": wall, **phases, "startup": wall - sum(phases.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="warm runs after the cold one")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold = one_run(Path(tmp), args.overrides)
        warm = [one_run(Path(tmp), args.overrides) for _ in range(args.repeats)]
    cols = ["wall", "startup", *PHASES]
    print(f"{'':10}" + "".join(f"{c:>9}" for c in cols))
    print(f"{'cold':10}" + "".join(f"{cold[c]:9.2f}" for c in cols))
    med = {c: statistics.median(w[c] for w in warm) for c in cols}
    print(f"{'warm med':10}" + "".join(f"{med[c]:9.2f}" for c in cols))
    print(f"cold/warm wall ratio: {cold['wall'] / med['wall']:.2f}x  (seconds; warm = median of {args.repeats})")


if __name__ == "__main__":
    main()
