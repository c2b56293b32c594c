"""The drift report (`python -m obesity.monitor`): its window of the prediction log, Evidently's
verdicts on real data and known shifts, the exit codes, MLflow, and a retrain on drift."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from obesity.config.checks import check
from obesity.config.compose import compose
from obesity.data.contract import CLASSES
from obesity.data.split import split_of
from obesity.errors import ConfigError
from obesity.monitoring import retrain
from obesity.testing.shifts import SHIFTS
from tests.helpers import compose_monitor


@pytest.fixture(scope="module")
def split():
    return split_of(compose([]).data)[1]


# Enough windows to bound a rate (the rule of three: 0 of N flagged bounds the rate below 3/N at
# 95%): 30 undrifted windows bound false alarms below 10%; docs/monitoring.md's "well under 5%"
# rests on scripts/bench_drift.py's 200 windows (0.0%), which would cost the suite ~2 minutes.
UNDRIFTED_WINDOWS, SHIFTED_WINDOWS = 30, 5


def test_shifted_values_stay_inside_the_contract(split):
    from obesity.data.load import validate

    rng = np.random.default_rng(0)
    for _, change in SHIFTS.values():
        shifted = change(split.X_test, rng)
        validate(shifted.assign(NObeyesdad=CLASSES[0]).astype(str))  # the service accepts each row


def test_monitor_settings_are_checked_naming_the_key(tmp_path):
    bad = compose_monitor(tmp_path, "monitor.num_method=nope", "monitor.cat_method=wasserstein",
                          "monitor.window=10", "version=latest", "monitor.drift_share=0")
    with pytest.raises(ConfigError) as error:
        check(bad)
    for key in ("monitor.num_method=nope", "monitor.cat_method=wasserstein", "monitor.window=10",
                "version=latest", "monitor.drift_share=0"):
        assert key in str(error.value)
    # choices are enums of the schema: refused at compose time, naming the key and every choice
    for override, choices in (("monitor.on_drift=panic", "report, retrain"),
                              ("monitor.on_degraded=panic", "report, retrain"),
                              ("monitor.report=sometimes", "drift, always, never")):
        with pytest.raises(ConfigError, match=rf"^{override.split('=')[0]}: .*'panic|sometimes'.*"
                                              rf"\[{choices}\]"):
            compose_monitor(tmp_path, override)


def test_the_retrain_command_sweeps_the_served_family_in_a_fresh_study(tmp_path):
    cfg = compose_monitor(tmp_path, "monitor=retrain")
    version = SimpleNamespace(name="obesity_full", version="3", tags={"model": "hgb"})
    cmd = retrain.command(cfg, version, "0123456789abcdef", tmp_path / "sweep")
    assert cmd[1:4] == ["-m", "obesity.train", "-m"]
    assert "sweep=hgb" in cmd and f"hydra.sweep.dir={tmp_path / 'sweep'}" in cmd
    assert "hydra.sweeper.study_name=retrain-obesity_full-v3-01234567" in cmd
    assert f"paths.outputs={tmp_path}" in cmd and "registry=local" in cmd
    given = compose_monitor(tmp_path, "monitor=retrain", "monitor.retrain=['model=lr','data.path=x.csv']")
    cmd = retrain.command(given, version, "0123456789abcdef", tmp_path / "sweep")
    assert "model=lr" in cmd and "data.path=x.csv" in cmd
    assert not any(a.startswith("hydra.sweeper.study_name") for a in cmd)  # not a sweep
    with pytest.raises(ConfigError, match=r"^monitor\.retrain: model\.nope: no such key"):
        retrain._same_data_warning(["sweep=rf", "model.nope=1"], version)  # before any sweep starts
    with pytest.raises(ConfigError, match="model=bmi_rule, which has no sweep config"):
        retrain.command(cfg, SimpleNamespace(name="obesity_full", version="1",
                                             tags={"model": "bmi_rule"}), "0" * 32, tmp_path)
