"""Benchmark: sweep throughput with 1 and 2 workers on one study, sqlite vs PostgreSQL.

    python scripts/bench_scale.py [--trials 16]

Each setting runs a fresh study of `sweep=rf` (150 trees, 3 folds: ~1.5 s of work a trial; no
promotion) to --trials trials, after one discarded warm-up sweep (cold imports, store creation).
"2 workers" are two `python -m obesity.train -m ...` processes started together on the
same study (each its own sweep dir, batches of 1). sqlite: registry=local (MLflow and Optuna in
sqlite files); PostgreSQL: registry=server (an `mlflow server` on PostgreSQL, Optuna on
PostgreSQL), both started here on loopback. Prints wall time, trials per minute, the 2-worker
speed-up and how many trials repeated another's parameters (work done twice: must be 0);
start-up is included, as a user waits for it too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from obesity.config.compose import compose
from obesity.testing import local_servers

ROOT = Path(__file__).resolve().parents[1]


def sweep(workers: int, trials: int, outputs: Path, env: dict, registry: str, study: str) -> float:
    """Wall seconds for `workers` sweep processes to bring `study` to `trials` trials."""
    # no pruning: every trial the same work, so the worker counts compare throughput
    args = ["-m", "sweep=rf", "hydra/sweeper/pruner=none", f"registry={registry}",
            f"hydra.sweeper.n_trials={trials}",
            "hydra.sweeper.n_jobs=1", f"hydra.sweeper.study_name={study}",
            "model.n_estimators=150", "cv_folds=3", "promote=false", f"paths.root={ROOT}",
            f"paths.outputs={outputs}"]  # sweep dirs differ: timestamps to the microsecond
    tick = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "obesity.train", *args], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(workers)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(err[-3000:])
    return time.perf_counter() - tick


def repeated_draws(storage: str, study: str) -> int:
    """Trials whose parameters another trial of the study drew already."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    drawn = [tuple(sorted(t.params.items())) for t in
             optuna.load_study(study_name=study, storage=storage).trials]
    return len(drawn) - len(set(drawn))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
    rows = []
    with local_servers.postgres() as pg, \
            local_servers.mlflow_server(f"{pg}/mlflow", Path(tempfile.mkdtemp())) as tracking:
        warm = Path(tempfile.mkdtemp(prefix="bench_scale_warmup_"))
        sweep(1, 1, warm, dict(local_servers.VENV_ENV), "local", "bench-warmup")
        for backend in ("sqlite", "postgresql"):
            for workers in (1, 2):
                outputs = Path(tempfile.mkdtemp(prefix=f"bench_scale_{backend}_{workers}_"))
                env = dict(local_servers.VENV_ENV)
                if backend == "postgresql":
                    env |= {"MLFLOW_TRACKING_URI": tracking, "OPTUNA_STORAGE": f"{pg}/optuna"}
                registry = "local" if backend == "sqlite" else "server"
                study = f"bench-{backend}-{workers}w"  # a fresh study per setting
                wall = sweep(workers, args.trials, outputs, env, registry, study)
                storage = (f"{pg}/optuna" if backend == "postgresql" else
                           compose([f"paths.outputs={outputs}"]).registry.study_storage)
                repeats = repeated_draws(storage, study)
                rows.append((backend, workers, wall, repeats))
                print(f"{backend:<11} {workers} worker(s): {wall:6.1f} s, "
                      f"{args.trials / wall * 60:5.1f} trials/min, {repeats} repeated", flush=True)
    print()
    print(f"{'storage':<11}{'workers':>8}{'wall s':>9}{'trials/min':>12}{'speed-up':>10}"
          f"{'repeated':>10}")
    for backend, workers, wall, repeats in rows:
        one = next(w for b, n, w, _ in rows if b == backend and n == 1)
        print(f"{backend:<11}{workers:>8}{wall:>9.1f}{args.trials / wall * 60:>12.1f}"
              f"{one / wall:>9.2f}x{repeats:>10}")


if __name__ == "__main__":
    main()
