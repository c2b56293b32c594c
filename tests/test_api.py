"""The Python API: the command line's configs, code path and errors, from any directory."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest
from sklearn.pipeline import Pipeline

import obesity
from obesity.data.contract import CLASSES
from obesity.registry import promote
from tests.conftest import ROOT, mlflow_client

SMALL = ["model=hgb", "model.max_iter=40", "data=lifestyle", "seed=3", "cv_folds=2"]


def test_compose_works_from_any_directory_and_many_times(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for model in ("rf", "hgb", "lr", "et"):
        cfg = obesity.compose([f"model={model}", "data=lifestyle"])
        assert (cfg.model.name, cfg.data.name, cfg.data.bmi) == (model, "lifestyle", False)
    # the data path points into the checkout, not into the working directory
    assert len(obesity.load_data(obesity.compose())) == 2087


def test_compose_errors_name_the_key_as_the_cli_does():
    with pytest.raises(obesity.ConfigError, match=r"model.max_dept"):
        obesity.compose(["model.max_dept=3"])
    with pytest.raises(obesity.ConfigError, match=r"model.max_depth: Value 'abc'"):
        obesity.compose(["model.max_depth=abc"])
    with pytest.raises(obesity.ConfigError, match=r"model=xgb: no such option; model is one of"):
        obesity.compose(["model=xgb"])


def test_load_data_names_the_column_and_rows_of_bad_data(tmp_path):
    frame = obesity.load_data(obesity.compose())
    assert frame.shape == (2087, 17) and not frame.duplicated().any()
    bad = tmp_path / "bad.csv"
    frame.head(5).assign(Height=[1.7, 175, 1.6, 1.8, 1.7]).to_csv(bad, index=False)
    with pytest.raises(obesity.DataError, match=r"'Height'.*'175(\.0)?' at line\(s\) 3"):
        obesity.load_data(obesity.compose([f"data.path={bad}"]))


def test_command_line_reproduces_a_cfg():
    cfg = obesity.compose([*SMALL, "model.learning_rate=0.05"])
    line = obesity.command_line(cfg).split()
    assert line[:5] == ["python", "-m", "obesity.train", "data=lifestyle", "model=hgb"]
    assert set(line[5:]) == {"model.learning_rate=0.05", "seed=3", "cv_folds=2", "model.max_iter=40"}
    assert obesity.command_line(obesity.compose()) == "python -m obesity.train"
    cfg.seed = 11  # edited in the notebook after composing: still reproduced
    assert "seed=11" in obesity.command_line(cfg).split()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("api")
    cfg = obesity.compose([*SMALL, f"paths.outputs={outputs}"])
    return outputs, cfg, obesity.fit(cfg)


@pytest.mark.slow
def test_fit_and_the_command_line_give_identical_metrics(fitted):
    outputs, cfg, result = fitted
    assert isinstance(result.model, Pipeline) and result.run_id
    assert result.objective == result.metrics["cv_f1_macro_mean"]
    line = shlex.split(obesity.command_line(cfg))
    assert f"paths.outputs={outputs}" in line
    proc = subprocess.run([sys.executable, *line[1:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow_client(outputs)
    runs = client.search_runs([client.get_experiment_by_name("obesity").experiment_id])
    cli_run = next(r for r in runs if r.info.run_id != result.run_id)
    for name, value in result.metrics.items():
        assert cli_run.data.metrics[name] == value, name


@pytest.mark.slow
def test_load_champion_is_the_registered_pipeline(fitted):
    _, cfg, result = fitted
    with pytest.raises(obesity.RegistryError, match=r"no obesity_lifestyle@champion"):
        obesity.load_champion(cfg)
    cfg.registry.promotion_threshold = 0.5  # a small lifestyle model: approve it for the test
    promote.register_and_promote(cfg, result)
    champion = obesity.load_champion(cfg)
    frame = obesity.load_data(cfg).head(20)
    assert list(champion.predict(frame)) == list(result.model.predict(frame))
    assert set(champion.classes_) == set(CLASSES)  # it knows every class of the contract


def test_an_installed_package_finds_its_packaged_configs(tmp_path):
    """As in a wheel (pyproject force-include): configs inside the package, no checkout around."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "obesity", site / "obesity",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "configs", site / "obesity" / "configs")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    code = ("import obesity, obesity.config.compose as c; cfg = obesity.compose(['model=lr']); "
            "print(c.CONFIG_DIR, cfg.model.name, cfg.paths.root)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, text=True,
                          capture_output=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin"},
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(site / "obesity" / "configs"), "lr", "."]
