"""The real config groups compose, validate against their schemas and fail naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from tests.helpers import CONFIGS, ROOT, run_cli

MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONFIGS / "data").glob("*.yaml"))
# checked here, not inside the tests parametrized by these globs (an empty glob runs none of them)
assert set(MODELS) >= {"rf", "hgb", "lr", "et", "bmi_rule"}, MODELS
assert set(DATA) >= {"full", "lifestyle"}, DATA


@pytest.mark.parametrize("override, said", [
    ("model.max_dept=12", "model.max_dept: no such key (did you mean 'max_depth', 'max_features'?); "
                          "the keys there: name, scale_numeric, n_estimators"),
    ("+model.max_dept=12", "model.max_dept: no such key of model=rf; its keys: name, scale_numeric"),
    ("model.max_depth=abc", "model.max_depth: Value 'abc' of type 'str' could not be converted"),
    ("model=xgb", "model=xgb: no such option; model is one of: bmi_rule, et, hgb, lr, rf"),
])
def test_cli_config_errors_are_one_line_naming_the_key_without_hydras_advice(tmp_path, override, said):
    proc = run_cli([override], tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert said in lines[0] and "To append" not in proc.stderr and "+model" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_cli_misspelt_override_exits_non_zero_naming_the_key(tmp_path):
    proc = run_cli(["model.n_estimatorz=5"], tmp_path)
    assert proc.returncode != 0
    assert "model.n_estimatorz" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_cli_prints_the_composed_config(tmp_path):
    proc = run_cli(["model=lr", "--cfg", "job"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = OmegaConf.create(proc.stdout)
    assert printed.model._target_ == "sklearn.linear_model.LogisticRegression"


def test_cli_with_an_out_of_range_value_is_one_line_exit_1_and_no_run_dir():
    """Checked before Hydra makes its run dir (there, an OSError traceback)."""
    proc = subprocess.run([sys.executable, "-m", "obesity.train", f"paths.root={ROOT}",
                           "data.test_size=1.5", "paths.outputs=/proc/x"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "data.test_size=1.5" in line and "paths.outputs=/proc/x" in line


IMPORTS_OF = """
import runpy, sys
module, sys.argv = sys.argv[1], sys.argv[1:]
try:
    runpy.run_module(module, run_name="__main__")
except SystemExit as exit_:
    print("EXIT", exit_.code)
print("HEAVY", sorted(m for m in ("mlflow", "sklearn", "onnxruntime") if m in sys.modules))
"""


@pytest.mark.parametrize("module, args", [
    ("obesity.train", ["--help"]), ("obesity.train", ["--cfg", "job"]),
    ("obesity.train", ["model.max_dept=3"]), ("obesity.train", ["model.max_depth=abc"]),
    ("obesity.train", ["model=xgb"]), ("obesity.train", ["data.path=BAD_CSV"]),
    ("obesity.serve", ["--help"]), ("obesity.serve", ["--cfg", "job"]),
    ("obesity.serve", ["prot=1"]),
])
def test_paths_that_end_before_a_run_import_no_mlflow_sklearn_or_onnxruntime(tmp_path, module, args):
    """What an entrypoint imports, read from the process itself (not timed): `--help`, printing
    the config, a misspelt or mistyped key, an unknown option and a bad data file must answer
    without loading the heavy libraries."""
    bad = tmp_path / "bad.csv"
    bad.write_text("Gender,Age\nMale,20\n")
    args = [a.replace("BAD_CSV", str(bad)) for a in args]
    proc = subprocess.run([sys.executable, "-c", IMPORTS_OF, module, f"paths.outputs={tmp_path}",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_python_dash_m_obesity_runs_each_entrypoint_by_name():
    """The container image's entrypoint: `python -m obesity train ...` is `python -m obesity.train ...`."""
    def obesity(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "obesity", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    shown = obesity("train", "model=hgb", "--cfg", "job")
    assert shown.returncode == 0 and OmegaConf.create(shown.stdout).model.name == "hgb"
    wrong = obesity("train", "model.max_dept=3")
    assert wrong.returncode == 1 and "model.max_dept: no such key" in wrong.stderr
    assert obesity("registry", "--help").stdout.startswith("usage: python -m obesity.registry")
    unknown = obesity("nope")
    assert unknown.returncode == 2 and "usage: python -m obesity {train,serve" in unknown.stderr
