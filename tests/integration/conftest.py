"""Fixtures shared by integration test files: one real training run, one real sweep."""

from __future__ import annotations

import pytest

from tests.helpers import FAST, SWEEP, run_cli, run_sweep


@pytest.fixture(scope="session")
def trained_cli(tmp_path_factory):
    """One real `python -m obesity.train` run (rf on full data) in a tmp store."""
    outputs = tmp_path_factory.mktemp("cli_run")
    proc = run_cli(["model=rf", *FAST], outputs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return outputs, proc


@pytest.fixture(scope="session")
def swept(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("sweep")
    proc = run_sweep(SWEEP, outputs)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return outputs, proc
