"""The runtime an entrypoint starts: the process's state in one place, given back when it closes."""

from __future__ import annotations

import os
import warnings

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from obesity import runtime
from obesity.data.load import load_dataset
from obesity.environment import DEFAULTS
from obesity.runtime import Runtime
from obesity.stores import sqlite_tuning
from tests.helpers import RAW_CSV


def test_a_started_runtime_keeps_data_and_gives_everything_back_when_it_closes(monkeypatch, tmp_path):
    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DO_NOT_TRACK", "0")  # a user's own value is kept, and left alone
    was_tuning = event.contains(Engine, "connect", sqlite_tuning._tune_sqlite)
    sqlite_tuning.uninstall()
    filters = list(warnings.filters)
    with Runtime() as started:
        assert len(warnings.filters) == len(filters) + 1  # the Ray plugin's warning (compat)
        assert runtime.current() is started
        assert all(os.environ[name] == value for name, value in DEFAULTS.items() if name != "DO_NOT_TRACK")
        assert load_dataset(RAW_CSV) is load_dataset(RAW_CSV)  # read once
        sqlite_tuning.install()  # what a store does when it opens
        with create_engine(f"sqlite:///{tmp_path / 'a.db'}").connect() as db:
            assert db.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        with pytest.raises(RuntimeError, match="started already"):
            Runtime().start()
    assert not any(name in os.environ for name in DEFAULTS if name != "DO_NOT_TRACK")
    assert os.environ["DO_NOT_TRACK"] == "0"
    assert warnings.filters == filters
    assert not event.contains(Engine, "connect", sqlite_tuning._tune_sqlite)
    assert started.caches.datasets == {} and runtime.current() is not started
    if was_tuning:
        sqlite_tuning.install()


def test_without_a_runtime_nothing_is_kept_between_calls():
    assert load_dataset(RAW_CSV) is not load_dataset(RAW_CSV)
    assert runtime.current() is not runtime.current()


def test_using_starts_one_only_when_none_is_started():
    with runtime.using() as outer:
        with runtime.using() as inner:
            assert inner is outer and outer.started
        assert outer.started  # the inner block did not close the outer one
    assert not outer.started
