"""Scoring a big file offline: `python -m obesity.predict` against `mlflow models predict` on the
same registered model and the same file, in one run.

    .venv/bin/python scripts/bench_predict.py [--rows 1000000] [--keep DIR]

A default run (300-tree forest) is trained and registered in a tmp store; the file is --rows
rows drawn with replacement from the data set's inputs. Each command is a real process: wall
seconds, rows/s and its peak RSS (the process and the children it waited for). Goal: obesity.predict
at least 5x mlflow's throughput with peak RSS under 1 GB. "Model floor" is the version's own
predict_proba over the whole file already in memory, every core: no command can beat it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO, GOAL_RSS_MB = 5.0, 1024


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a command, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{out[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def register(outputs: Path, env: dict[str, str]) -> None:
    """The default run, registered (and champion) in the stores under `outputs`."""
    py = sys.executable
    subprocess.run([py, "-m", "obesity.train", f"paths.outputs={outputs}"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{outputs}/mlflow.db")
    run = client.search_runs([client.get_experiment_by_name("obesity").experiment_id])[0]
    subprocess.run([py, "-m", "obesity.registry", "-o", f"paths.outputs={outputs}", "register",
                    run.info.run_id], cwd=ROOT, env=env, check=True, capture_output=True)


def make_file(rows: int, folder: Path) -> tuple[Path, Path]:
    """In a process of its own: a forked command starts with its parent's memory, so a parent
    holding the big frame would count in every command's peak RSS."""
    subprocess.run([sys.executable, __file__, "--make-file", str(rows), str(folder)], check=True)
    return folder / "people.csv", folder / "people.parquet"


def _make_file(rows: int, folder: Path) -> None:
    import pandas as pd

    from obesity.data.contract import FEATURE_NAMES

    raw = pd.read_csv(ROOT / "data/raw/ObesityDataSet_raw_and_data_sinthetic.csv", dtype=str)
    sample = raw[list(FEATURE_NAMES)].sample(n=rows, replace=True, random_state=0)
    csv_path, parquet_path = folder / "people.csv", folder / "people.parquet"
    sample.to_csv(csv_path, index=False)
    typed = pd.read_csv(csv_path)  # numbers as numbers in Parquet, as a warehouse holds them
    typed.to_parquet(parquet_path, index=False)


def model_floor(outputs: Path, csv_path: Path) -> float:
    """Seconds of the version's predict_proba over the whole file in memory, every core."""
    import pandas as pd

    from obesity.model import files as model_files
    from obesity.runtime import using

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{outputs}/mlflow.db"
    with using():
        pipeline = model_files.load_pipeline("obesity_full", 1)
    pipeline.set_params(**{k: os.cpu_count() for k in pipeline.get_params() if k.endswith("n_jobs")})
    frame = pd.read_csv(csv_path)
    start = time.perf_counter()
    pipeline.predict_proba(frame)
    return time.perf_counter() - start


def agreement(ours: Path, mlflows: Path) -> float:
    import json

    import pandas as pd

    theirs = json.loads(mlflows.read_text())["predictions"]
    mine = pd.read_csv(ours, usecols=["prediction"])["prediction"].tolist()
    return sum(a == b for a, b in zip(mine, theirs, strict=True)) / len(mine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep the files")
    args = parser.parse_args()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        outputs = work / "outputs"
        print(f"training and registering the default run in {outputs} ...", flush=True)
        register(outputs, env)
        csv_path, parquet_path = make_file(args.rows, work)
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{outputs}/mlflow.db"
        py, mlflow = sys.executable, str(Path(sys.executable).with_name("mlflow"))
        ours = [py, "-m", "obesity.predict"]
        runs = {
            "mlflow models predict (csv)": [mlflow, "models", "predict", "-m",
                                            "models:/obesity_full@champion", "-i", str(csv_path),
                                            "-t", "csv", "-o", str(work / "mlflow.json"),
                                            "--env-manager", "local"],
            "obesity.predict csv -> csv": [*ours, str(csv_path), str(work / "out.csv"),
                                           f"paths.outputs={outputs}"],
            "obesity.predict parquet -> parquet": [*ours, str(parquet_path),
                                                   str(work / "out.parquet"),
                                                   f"paths.outputs={outputs}"],
            "obesity.predict csv -> csv, sklearn pipeline": [*ours, str(csv_path),
                                                             str(work / "out-sklearn.csv"),
                                                             f"paths.outputs={outputs}",
                                                             "use_onnx=false"],
        }
        figures = {name: timed(command, env, work) for name, command in runs.items()}
        floor = model_floor(outputs, csv_path)
        same = agreement(work / "out.csv", work / "mlflow.json")
    base = figures["mlflow models predict (csv)"][0]
    print(f"\n{args.rows:,} rows, {os.cpu_count()} cores\n")
    print("| command | seconds | rows/s | peak RSS MB | throughput vs mlflow |\n|---|---|---|---|---|")
    for name, (wall, rss) in figures.items():
        print(f"| {name} | {wall:.1f} | {args.rows / wall:,.0f} | {rss:,.0f} | {base / wall:.2f}x |")
    print(f"| model floor: predict_proba in memory, every core | {floor:.1f} | "
          f"{args.rows / floor:,.0f} | - | {base / floor:.2f}x |")
    wall, rss = figures["obesity.predict csv -> csv"]
    ratio = base / wall
    print(f"\nobesity.predict (csv) vs mlflow models predict: {ratio:.2f}x (goal >= {GOAL_RATIO:g}x: "
          f"{'met' if ratio >= GOAL_RATIO else 'missed'}); the model floor alone allows at most "
          f"{base / floor:.2f}x")
    print(f"peak RSS {rss:,.0f} MB (goal < {GOAL_RSS_MB} MB: {'met' if rss < GOAL_RSS_MB else 'missed'})")
    print(f"same label as mlflow on {same:.2%} of the rows")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make-file"]:
        _make_file(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
