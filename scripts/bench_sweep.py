"""Sweep throughput: the same trials with 1 and 2 workers, and the framework's time per trial.

    .venv/bin/python scripts/bench_sweep.py [--trials 12] [-- extra overrides]

Three real sweeps of `sweep=rf` (promotion off), each in a fresh tmp store, with a seeded RANDOM
sampler so that all three run exactly the same trials whatever the batch size:
  basic    Hydra's basic launcher, trials one after another in the sweep process
  joblib1  joblib launcher, 1 worker
  joblib2  joblib launcher, 2 workers, batches of 2
  joblib2x4  joblib launcher, 2 workers, batches of 4
Speed-up = the best single-worker wall time / the 2-worker wall time.
Framework time per trial (basic launcher) = the gap between consecutive trial runs' starts minus
that trial's fit+CV time: Hydra job set-up, Optuna ask/tell, data loading, MLflow logging.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCHERS = {
    "basic": [],
    "joblib1": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=1", "hydra.sweeper.n_jobs=1"],
    "joblib2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"],
    # batches of 4 on 2 workers: joblib hands the next trial to whichever worker is free, so a
    # slow trial no longer idles the other worker until the batch ends
    "joblib2x4": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=4"],
}


def sweep(outputs: Path, trials: int, launcher: list[str], extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "obesity.train", "-m", "sweep=rf", f"paths.outputs={outputs}",
           "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0",
           f"hydra.sweeper.n_trials={trials}", "promote=false", *launcher, *extra]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def sweep_runs(outputs: Path):
    """The parent run and the trial runs (by start time) of the one sweep in `outputs`."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    from obesity.config.compose import compose

    registry = compose([f"paths.outputs={outputs}"]).registry  # where the run put its stores
    client = MlflowClient(registry.tracking_uri)
    exp = client.get_experiment_by_name(registry.experiment)
    runs = client.search_runs([exp.experiment_id], "tags.trial != ''", max_results=10_000)
    parent = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")[0]
    return parent, sorted(runs, key=lambda r: r.info.start_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every sweep")
    args = parser.parse_args()
    walls, phase, fit, framework, params = {}, {}, {}, [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, launcher in LAUNCHERS.items():
            outputs = Path(tmp) / name
            walls[name] = sweep(outputs, args.trials, launcher, args.overrides)
            parent, runs = sweep_runs(outputs)
            # from the sweep's parent run (process started, store open) to the last trial's end
            phase[name] = (max(r.info.end_time for r in runs) - parent.info.start_time) / 1000
            fit[name] = sum(r.data.metrics["time_fit_cv_s"] for r in runs)
            params[name] = sorted(tuple(sorted((k, v) for k, v in r.data.params.items()
                                               if k.startswith("model."))) for r in runs)
            if name == "basic":
                for a, b in itertools.pairwise(runs):
                    gap = (b.info.start_time - a.info.start_time) / 1000
                    framework.append(gap - a.data.metrics["time_fit_cv_s"])
    same = all(p == params["basic"] for p in params.values())
    print(f"{args.trials} trials of sweep=rf, random sampler seed 0 (same trials in all three: {same})")
    print(f"{'launcher':11}{'wall s':>9}{'trials s':>10}{'fit+cv s':>10}")
    for name in LAUNCHERS:
        print(f"{name:11}{walls[name]:9.1f}{phase[name]:10.1f}{fit[name]:10.1f}")
    print("(wall: the whole command; trials: from the sweep's parent run start to the last "
          "trial's end, i.e. without interpreter start-up and imports of the sweep process)")
    for name in ("joblib2", "joblib2x4"):
        wall = min(walls["basic"], walls["joblib1"]) / walls[name]
        trials = min(phase["basic"], phase["joblib1"]) / phase[name]
        print(f"speed-up {name} vs best single worker: wall {wall:.2f}x, trials {trials:.2f}x "
              "(goal >= 1.6x)")
    print(f"framework time per trial (basic launcher): median {statistics.median(framework):.3f} s,"
          f" max {max(framework):.3f} s over {len(framework)} gaps (goal median <= 0.15 s)")


if __name__ == "__main__":
    main()
