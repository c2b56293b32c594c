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
from tests.helpers import ROOT, mlflow_client

SMALL = ["model=hgb", "model.max_iter=40", "data=lifestyle", "seed=3", "cv_folds=2"]


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
