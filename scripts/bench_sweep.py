"""Sweep throughput: the same trials with 1 and 2 workers, and the framework's time per trial.

    .venv/bin/python scripts/bench_sweep.py [--trials 12] [--family hgb] [-- extra overrides]
    .venv/bin/python scripts/bench_sweep.py --pruner median [--trials 32]

Three real sweeps of `sweep=rf` (promotion off), each in a fresh tmp store, with a seeded RANDOM
sampler so that all three run exactly the same trials whatever the batch size:
  basic    Hydra's basic launcher, trials one after another in the sweep process
  joblib1  joblib launcher, 1 worker
  joblib2  joblib launcher, 2 workers, batches of 2
  joblib2x4  joblib launcher, 2 workers, batches of 4
Speed-up = the best single-worker wall time / the 2-worker wall time.
Framework time per trial (basic launcher) = the gap between consecutive trial runs' starts minus
that trial's fit+CV time: Hydra job set-up, Optuna ask/tell, data loading, MLflow logging.

With --pruner NAME: sweep=rf and sweep=hgb (their default seeded TPE, 5 folds, basic launcher),
each without pruning and with hydra/sweeper/pruner=NAME, same seed and number of trials, fresh
stores: wall time, CV folds fitted, trials pruned and the best CV score. Goal (issue 16): >= 1.3x
less wall time for a best value within 0.003 of the unpruned sweep's.
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
    # a sweep's trials run single-threaded (configs/sweep/base.yaml: threads=1); this is the
    # single worker with every core for its fits, in case that is the faster one here
    "basic-all": ["threads=null"],
    "joblib1": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=1", "hydra.sweeper.n_jobs=1"],
    "joblib2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"],
    # batches of 4 on 2 workers: joblib hands the next trial to whichever worker is free, so a
    # slow trial no longer idles the other worker until the batch ends
    "joblib2x4": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=4"],
    "2processes": [],  # two sweep commands started together on one study (see sweep())
}


RANDOM = ["hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0"]


def sweep(outputs: Path, trials: int, launcher: list[str], extra: list[str],
          family: str = "rf", sampler: list[str] = RANDOM, processes: int = 1) -> float:
    """Wall time of `processes` sweep commands started together on one study."""
    cmd = [sys.executable, "-m", "obesity.train", "-m", f"sweep={family}", f"paths.outputs={outputs}",
           *sampler, f"hydra.sweeper.n_trials={trials}", "promote=false", *launcher, *extra]
    start = time.perf_counter()
    workers = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for _ in range(processes)]
    for worker in workers:
        _, err = worker.communicate()
        if worker.returncode:
            raise SystemExit(f"sweep failed: {err.decode()[-2000:]}")
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
    parser.add_argument("--trials", type=int, default=None, help="default 16 (--pruner: 32)")
    parser.add_argument("--pruner", help="compare sweeps without and with this pruner")
    parser.add_argument("--family", default="rf", help="the model family swept (rf, hgb, ...)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every sweep")
    args = parser.parse_args()
    if args.pruner:
        pruning(args.pruner, args.trials or 32, args.overrides)
        return
    args.trials = args.trials or 16
    walls, phase, fit, framework, params = {}, {}, {}, [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, launcher in LAUNCHERS.items():
            outputs = Path(tmp) / name
            # no pruning here: the launchers must run exactly the same work
            two = name == "2processes"
            walls[name] = sweep(outputs, args.trials, [] if two else launcher,
                                ["hydra/sweeper/pruner=none", *args.overrides],
                                family=args.family, processes=2 if two else 1)
            parent, runs = sweep_runs(outputs)
            # from the sweep's parent run (process started, store open) to the last trial's end
            phase[name] = (max(r.info.end_time for r in runs) - parent.info.start_time) / 1000
            fit[name] = sum(r.data.metrics["time_fit_cv_s"] for r in runs)
            params[name] = sorted(tuple(sorted((k, v) for k, v in r.data.params.items()
                                               if k.startswith("model."))) for r in runs)
            if two:  # two parent runs: from the first one's start
                phase[name] = (max(r.info.end_time for r in runs) - parent.info.start_time) / 1000
            if name == "basic":
                for a, b in itertools.pairwise(runs):
                    gap = (b.info.start_time - a.info.start_time) / 1000
                    framework.append(gap - a.data.metrics["time_fit_cv_s"])
    same = all(p == params["basic"] for p in params.values())
    print(f"{args.trials} trials of sweep={args.family}, random sampler seed 0 (same trials in "
          f"all: {same})")
    print(f"{'launcher':11}{'wall s':>9}{'trials s':>10}{'fit+cv s':>10}")
    for name in walls:
        print(f"{name:11}{walls[name]:9.1f}{phase[name]:10.1f}{fit[name]:10.1f}")
    print("(wall: the whole command; trials: from the sweep's parent run start to the last "
          "trial's end, i.e. without interpreter start-up and imports of the sweep process; "
          "2processes: two sweep commands on one study, as docs/scale-out.md runs them)")
    single = ("basic", "basic-all", "joblib1")
    for name in ("joblib2", "joblib2x4", "2processes"):
        wall = min(walls[n] for n in single) / walls[name]
        trials = min(phase[n] for n in single) / phase[name]
        print(f"speed-up {name} vs best single worker: wall {wall:.2f}x, trials {trials:.2f}x "
              "(goal >= 1.6x)")
    print(f"framework time per trial (basic launcher): median {statistics.median(framework):.3f} s,"
          f" max {max(framework):.3f} s over {len(framework)} gaps (goal median <= 0.15 s)")


def pruning(pruner: str, trials: int, extra: list[str]) -> None:
    """The same sweeps without and with `pruner` (see the module docstring)."""
    print(f"{trials} trials each, seeded TPE (seed 42), 5 folds, basic launcher, fresh stores")
    print(f"{'sweep':6}{'pruner':>8}{'wall s':>9}{'folds':>7}{'pruned':>8}{'best cv_f1':>12}")
    met = True
    with tempfile.TemporaryDirectory() as tmp:
        for family in ("rf", "hgb"):
            found = {}
            for name in ("none", pruner):
                outputs = Path(tmp) / f"{family}-{name}"
                # the pruner's own keys (hydra.sweeper.pruner.*) go to the pruned sweep only
                mine = [o for o in extra if not o.startswith("hydra.sweeper.pruner.") or name != "none"]
                wall = sweep(outputs, trials, [], [f"hydra/sweeper/pruner={name}", *mine],
                             family=family, sampler=[])
                metrics = sweep_runs(outputs)[0].data.metrics
                found[name] = (wall, metrics["best_cv_f1_macro_mean"])
                print(f"{family:6}{name:>8}{wall:9.1f}{int(metrics['folds_fitted']):>4}/"
                      f"{int(metrics['folds_without_pruning']):<3}{int(metrics['trials_pruned']):>6}"
                      f"{metrics['best_cv_f1_macro_mean']:12.4f}", flush=True)
            speed = found["none"][0] / found[pruner][0]
            gap = found["none"][1] - found[pruner][1]
            ok = speed >= 1.3 and gap <= 0.003
            met &= ok
            print(f"{family}: {speed:.2f}x less wall time, best {gap:+.4f} below the unpruned "
                  f"sweep's (goal >= 1.3x within 0.003: {'met' if ok else 'MISSED'})", flush=True)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
