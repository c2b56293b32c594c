"""The data contract applied to a chunk of a file at once: which rows break it (a vectorised
pass over each column), and for those rows only, every problem in the service's own words
(`serving.schema.person_errors`, the check of a JSON body and of POST /predict/csv), so a row is
refused offline exactly when the service would refuse it."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import pandas as pd

from obesity.data.contract import FEATURES, Numeric
from obesity.serving.schema import FieldError, clip, person_errors


def check(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The 16 input columns typed (numbers as float64, levels as text) and a mask of the rows
    that break the contract (a missing or unreadable cell, a number out of range, an unknown
    level)."""
    bad = np.zeros(len(frame), dtype=bool)
    typed: dict[str, Any] = {}
    for column in FEATURES:
        cells = frame[column.name]
        if isinstance(column, Numeric):
            values = _numbers(cells)
            with np.errstate(invalid="ignore"):
                bad |= ~((values >= column.low) & (values <= column.high))  # NaN and inf too
            typed[column.name] = values
        else:
            bad |= ~cells.isin(column.levels).to_numpy()
            typed[column.name] = cells.to_numpy()
    return pd.DataFrame(typed, index=frame.index), bad


def _numbers(cells: pd.Series) -> np.ndarray:
    """A column as float64, NaN where a cell is not a number. Text goes through pandas' parser
    first and, for what it refuses, Python's float() (what the service's CSV reading uses)."""
    if pd.api.types.is_bool_dtype(cells):  # true/false is not a number to the service either
        return np.full(len(cells), np.nan)
    if pd.api.types.is_numeric_dtype(cells):
        return cells.to_numpy(dtype="float64", na_value=np.nan)
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    for i in np.flatnonzero(np.isnan(values)):
        cell = cells.iat[i]
        if isinstance(cell, str) and cell.strip():
            with contextlib.suppress(ValueError):
                values[i] = float(cell)
    return values


def blank(row: tuple[Any, ...]) -> bool:
    """A row whose every cell is empty: a blank CSV line, skipped (as the service skips it)."""
    return all(_missing(cell) for cell in row)


def problems(row: dict[str, Any], line: int) -> list[FieldError]:
    """Every problem of one row (its cells by column name), as the service names them."""
    values: dict[str, object] = {}
    errors: list[FieldError] = []
    for column in FEATURES:
        cell = row[column.name]
        cell = cell.item() if isinstance(cell, np.generic) else cell  # numpy scalars from Parquet
        if not isinstance(column, Numeric):
            values[column.name] = cell
        elif _missing(cell):
            errors.append(FieldError(column.name, "missing value", line))
        elif isinstance(cell, str):
            try:
                values[column.name] = float(cell)
            except ValueError:
                errors.append(FieldError(column.name, f"not a number (got {clip(repr(cell))})", line))
        else:
            values[column.name] = cell
    errors += [FieldError(e.field, e.message, line) for e in person_errors(values) if e.field in values]
    return errors


def _missing(cell: Any) -> bool:
    if cell is None:
        return True
    if isinstance(cell, str):
        return not cell.strip()
    return isinstance(cell, float) and math.isnan(cell)
