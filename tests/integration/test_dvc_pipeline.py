"""The DVC pipeline (dvc.yaml) in a tmp copy of the repository: what reruns, and the same numbers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import RAW_CSV, ROOT, mlflow_client

# Small but real: 60 trees, 3 folds; no model or figures logged to MLflow (not what is tested).
FAST = ["model.n_estimators=60", "cv_folds=3", "n_jobs=1", "log_model=false", "log_figures=false"]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
       "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t"}
ENV.pop("OBESITY_ROOT", None)
pytestmark = pytest.mark.slow  # dvc repro in a copy of the repo: ~1.5 min


def sh(repo: Path, *cmd: str) -> str:
    proc = subprocess.run(cmd, cwd=repo, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def params(repo: Path, *overrides: str) -> None:
    sh(repo, sys.executable, "scripts/params.py", *overrides)


def ran(output: str) -> set[str]:
    return {s for s in ("prepare", "train", "evaluate") if f"Running stage '{s}'" in output}


def metrics(repo: Path) -> dict:
    return {name: json.loads((repo / "reports" / f"{name}.json").read_text())
            for name in ("data", "train", "metrics")}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """The repository's files (as `git ls-files` sees them) in a fresh git repo, plus the raw CSV."""
    dst = tmp_path_factory.mktemp("dvc_repo")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in listed:
        if (ROOT / rel).is_file() and not rel.startswith("reports/"):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dst / rel)
    shutil.copy2(RAW_CSV, dst / "data" / "raw" / RAW_CSV.name)
    params(dst, *FAST)
    sh(dst, "git", "init", "-q")
    sh(dst, "git", "add", "-A")
    sh(dst, "git", "commit", "-qm", "copy")
    return dst


def committed(path: str) -> str:
    """A file as the last commit holds it (a `dvc exp run` may have changed the workspace's)."""
    return subprocess.run(["git", "show", f"HEAD:{path}"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def test_params_yaml_is_the_composition_of_configs():
    """The committed params.yaml is exactly what scripts/params.py makes from configs/."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from params import HEADER, compose_params

    assert committed("params.yaml") == HEADER + compose_params([])


def test_the_committed_dvc_lock_is_true_for_the_committed_tree(tmp_path):
    """A fresh clone: `dvc status` finds every dependency and parameter as dvc.lock records it
    (only the outputs are missing), so `dvc repro` reproduces, not changes, the lock."""
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True)
    shutil.copy2(RAW_CSV, tmp_path / "data" / "raw" / RAW_CSV.name)
    sh(tmp_path, "git", "init", "-q")
    status = json.loads(sh(tmp_path, "dvc", "status", "--json").splitlines()[-1])
    made = ("data/prepared/", "models/")  # other stages' outputs: not in a fresh clone
    changed = {(stage, kind, path): state for stage, changes in status.items()
               for change in changes if isinstance(change, dict)
               for kind, paths in change.items() if kind != "changed outs"
               for path, state in (paths.items() if isinstance(paths, dict) else [(paths, "")])
               if not (state == "deleted" and path.startswith(made))}
    assert not changed, changed


def restored(repo: Path) -> Path:
    """The fixture's repository as it was made: its raw file and params.yaml, whatever an
    earlier test changed (each test's preconditions are its own, in any order)."""
    shutil.copy2(RAW_CSV, repo / "data" / "raw" / RAW_CSV.name)
    params(repo, *FAST)
    return repo


def test_repro_runs_every_stage_then_nothing(repo):
    restored(repo)
    first = sh(repo, "dvc", "repro", "--force")  # as on a fresh clone, whatever ran before
    assert ran(first) == {"prepare", "train", "evaluate"}
    assert sh(repo, "dvc", "repro").count("Running stage") == 0
    shown = metrics(repo)
    assert shown["data"]["rows_dedup"] == 2087 and shown["data"]["duplicates_dropped"] == 24
    assert 0.9 < shown["train"]["cv_f1_macro_mean"] <= 1 and 0.9 < shown["metrics"]["test_f1_macro"] <= 1
    per_class = (repo / "reports" / "per_class.csv").read_text().splitlines()
    assert per_class[0] == "class,precision,recall,f1" and len(per_class) == 8
    assert "Obesity_Type_III" in sh(repo, "dvc", "plots", "show", "--json")


def test_same_config_twice_gives_exactly_the_same_metrics(repo):
    sh(restored(repo), "dvc", "repro")
    before = metrics(repo)
    assert ran(sh(repo, "dvc", "repro", "--force")) == {"prepare", "train", "evaluate"}
    assert metrics(repo) == before


def test_dvc_and_the_command_line_give_the_same_metrics(repo, tmp_path):
    sh(restored(repo), "dvc", "repro")
    proc = subprocess.run([sys.executable, "-m", "obesity.train", f"paths.outputs={tmp_path}", *FAST],
                          cwd=repo, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow_client(tmp_path)
    [run] = client.search_runs([client.get_experiment_by_name("obesity").experiment_id])
    reported = metrics(repo)
    for name, value in {**reported["train"], **reported["metrics"]}.items():
        assert run.data.metrics[name] == value, name


def test_a_model_parameter_reruns_train_and_evaluate_only(repo):
    sh(restored(repo), "dvc", "repro")
    params(repo, *FAST, "model.n_estimators=40")
    output = sh(repo, "dvc", "repro")
    assert ran(output) == {"train", "evaluate"} and "Stage 'prepare' didn't change" in output


def test_exp_run_composes_params_through_hydra(repo):
    sh(restored(repo), "dvc", "repro")  # the data stage is up to date before the experiment
    output = sh(repo, "dvc", "exp", "run", "-S", "model=hgb", "-S", "model.max_iter=40",
                "-S", "cv_folds=2", "-S", "log_model=false", "-S", "log_figures=false")
    composed = yaml.safe_load((repo / "params.yaml").read_text())
    assert composed["model"]["name"] == "hgb"
    assert composed["model"]["_target_"] == "sklearn.ensemble.HistGradientBoostingClassifier"
    assert composed["model"]["max_iter"] == 40 and composed["cv_folds"] == 2
    assert ran(output) == {"train", "evaluate"}  # the data params did not change
    assert "hgb" in sh(repo, "dvc", "exp", "show", "--json")


def test_a_changed_raw_file_reruns_everything(repo):
    sh(restored(repo), "dvc", "repro")
    raw = repo / "data" / "raw" / RAW_CSV.name
    lines = raw.read_text().splitlines(keepends=True)
    raw.write_text("".join(lines[:-1]))  # one row fewer: a new data version
    output = sh(repo, "dvc", "repro")
    assert ran(output) == {"prepare", "train", "evaluate"}
    assert metrics(repo)["data"]["rows_raw"] == 2110
