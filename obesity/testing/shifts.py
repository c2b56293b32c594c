"""Known shifts of traffic, for checking that the drift report finds what it should and nothing
else (scripts/bench_drift.py, tests/integration/test_monitor.py). Shifted values stay inside the data
contract: the service would refuse anything else, so it could never reach the log."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from obesity.data.contract import Numeric, column


def _add(name: str, amount: float) -> Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]:
    spec = column(name)
    assert isinstance(spec, Numeric)

    def shift(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return frame.assign(**{name: (frame[name] + amount).clip(spec.low, spec.high)})
    return shift


def _mostly(name: str, level: str, share: float
            ) -> Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]:
    def shift(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        changed = frame.copy()
        changed.loc[rng.random(len(frame)) < share, name] = level
        return changed
    return shift


# name: (the column it moves, the shift)
SHIFTS: dict[str, tuple[str, Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]]] = {
    "FAF+1": ("FAF", _add("FAF", 1.0)),  # everyone more active (capped at the contract's 3)
    "Age+15": ("Age", _add("Age", 15.0)),  # an older population
    "MTRANS mostly Automobile": ("MTRANS", _mostly("MTRANS", "Automobile", 0.6)),
}

# Smaller shifts, near what a 300-row window can tell from noise (scripts/bench_drift.py --subtle)
SUBTLE: dict[str, tuple[str, Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]]] = {
    "Age+2": ("Age", _add("Age", 2.0)),
    "FAF+0.3": ("FAF", _add("FAF", 0.3)),
    "Weight+8": ("Weight", _add("Weight", 8.0)),
}


def windows(source: pd.DataFrame, count: int, rows: int, seed: int
            ) -> list[pd.DataFrame]:
    """`count` windows of `rows` rows drawn with replacement from `source` (seeded)."""
    rng = np.random.default_rng(seed)
    return [source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
            for _ in range(count)]
