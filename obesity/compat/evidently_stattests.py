"""Evidently's registry of drift tests (`evidently.legacy`: the new API has no lookup by name):
which stattest names exist for a column kind, and the name a report shows for one."""

from __future__ import annotations

from typing import Any


def stattest(method: str, numeric: bool) -> Any | None:
    """Evidently's stattest `method` for a numeric (else categorical) column; None when it has
    none by that name or it does not take that kind of column."""
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Numerical if numeric else ColumnType.Categorical
    try:
        test = get_registered_stattest(method, kind)
    except Exception:  # Evidently: StatTest not found (or a type error)
        return None
    return test if test is not None and kind in test.allowed_feature_types else None


def display_name(method: str, numeric: bool) -> str:
    """The name Evidently's report gives the stattest `method` (the method itself if unknown)."""
    test = stattest(method, numeric)
    return str(test.display_name) if test is not None else method
