"""Whether an Optuna distribution holds a value (`BaseDistribution._contains`, private): the
champion's parameters are enqueued only where the search space can hold them."""

from __future__ import annotations

from typing import Any


def holds(distribution: Any, value: Any) -> bool:
    """`value` is one `distribution` can sample (False for None or a value of another type)."""
    if value is None:
        return False
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False
