"""Fixtures every test may use, and how the two xdist workers share the tests.

Shared helpers are in tests/helpers/ (imported by name); fixtures of integration tests only
(real runs, real sweeps) are in tests/integration/conftest.py.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session")
def lines() -> list[str]:
    """The real CSV's lines, header first: what the tests' small bad files are made from."""
    from tests.helpers import RAW_CSV

    return RAW_CSV.read_text().splitlines()

# Seconds each test file took (setup, call, teardown), written by `pytest --record-durations`.
# The workers take the longest files first, so a long file started last cannot leave one worker
# alone at the end; a file not yet recorded counts as the longest. An integration file runs on
# one worker (its module fixtures: one real model, one server); unit tests go one by one
# (--dist loadgroup).
DURATIONS = Path(__file__).with_name("durations.json")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--record-durations", action="store_true",
                     help=f"write each test file's seconds to {DURATIONS.name} (the workers' order)")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    known: dict[str, float] = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}

    def rank(item: pytest.Item) -> float:
        return -known.get(item.nodeid.split("::")[0], float("inf"))

    items.sort(key=rank)  # stable: tests keep their order inside a file
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


_SPENT: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _SPENT[report.nodeid.split("::")[0]] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.getoption("record_durations") and not hasattr(session.config, "workerinput"):
        known = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
        known |= {path: round(seconds, 1) for path, seconds in _SPENT.items()}
        DURATIONS.write_text(json.dumps(dict(sorted(known.items())), indent=1) + "\n")
