"""The Python API: the command line's configs, code path and errors, from any directory."""

from __future__ import annotations

import pytest

import obesity

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
