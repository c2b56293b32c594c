"""Load, validate and deduplicate a data set (the split: obesity.data.split). Nothing here is
fit on data."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from obesity.data.contract import COLUMNS, TARGET, Categorical, Numeric
from obesity.errors import DataError
from obesity.runtime import current

# CSV line numbers are what a user sees in an editor: the header is line 1, the first row line 2.
_FIRST_DATA_LINE = 2
_MAX_LISTED = 5  # bad values / lines shown per problem; the count says how many there are


@dataclass(frozen=True)
class Dataset:
    """A validated, deduplicated data set and where it came from."""

    frame: pd.DataFrame
    path: Path
    md5: str
    rows_raw: int

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def duplicates_dropped(self) -> int:
        return self.rows_raw - self.rows


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes, the same digest DVC records."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def load_dataset(path: str | Path) -> Dataset:
    """Read the CSV at `path`, check it against the contract and drop exact duplicate rows.

    Raises DataError naming the file, and for contract breaches the column, the bad values and
    their CSV line numbers. A file already loaded in this runtime and unchanged since (same
    size and modification time) is not read again: sweep workers run many trials each.
    """
    cache = current().caches.datasets
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in cache:
        return cache[key]
    dataset = _load(path)
    if key is not None:
        if len(cache) >= _CACHED:  # the original file and a few labelled extras at most
            del cache[next(iter(cache))]
        cache[key] = dataset
    return dataset


_CACHED = 8


def _load(path: Path) -> Dataset:
    raw = _read_csv(path)
    frame = validate(raw, source=str(path))
    deduped = frame.drop_duplicates(ignore_index=True)
    return Dataset(frame=deduped, path=path, md5=file_md5(path), rows_raw=len(frame))


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        hint = " (run `dvc pull` to fetch the tracked data)" if "data/raw" in path.as_posix() else ""
        raise DataError(f"{path}: no such file{hint}")
    try:
        # Everything as text: the contract, not pandas' type guessing, decides what is numeric.
        return pd.read_csv(path, dtype=str, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a CSV header and rows)") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise DataError(f"{path}: not a well-formed CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def validate(raw: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """Check a frame of text cells against the contract; return it typed (floats and strings).

    Collects every problem before raising, so one run shows them all.
    """
    problems: list[str] = []
    expected = [c.name for c in COLUMNS]
    missing = [name for name in expected if name not in raw.columns]
    unexpected = [name for name in raw.columns if name not in expected]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected column(s): {', '.join(map(str, unexpected))}")
    if problems:
        raise DataError(f"{source}: " + "; ".join(problems))
    if raw.empty:
        raise DataError(f"{source}: the file has a header but no data rows")

    typed: dict[str, pd.Series] = {}
    for col in COLUMNS:
        cells = raw[col.name]
        missing_mask = cells.isna() | (cells.str.strip() == "")
        if missing_mask.any():
            problems.append(f"column {col.name!r}: missing values {_lines(missing_mask)}")
        if isinstance(col, Numeric):
            values = pd.to_numeric(cells, errors="coerce")
            not_number = values.isna() & ~missing_mask
            if not_number.any():
                problems.append(
                    f"column {col.name!r}: not a number: {_values(cells, not_number)} "
                    f"{_lines(not_number)}"
                )
            # NaN/inf spelled out ("nan", "inf") parse as floats: catch them as out of range too.
            bad_range = values.notna() & ~values.between(col.low, col.high)
            if bad_range.any():
                problems.append(
                    f"column {col.name!r}: outside [{col.low:g}, {col.high:g}]: "
                    f"{_values(cells, bad_range)} {_lines(bad_range)}"
                )
            typed[col.name] = values.astype("float64")
        else:
            assert isinstance(col, Categorical)
            unknown = ~cells.isin(col.levels) & ~missing_mask
            if unknown.any():
                problems.append(
                    f"column {col.name!r}: unknown categories {_values(cells, unknown)} "
                    f"{_lines(unknown)}; allowed: {', '.join(col.levels)}"
                )
            typed[col.name] = cells.astype("str")
    if problems:
        raise DataError(f"{source}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    return pd.DataFrame(typed)


def _lines(mask: pd.Series) -> str:
    lines = [int(i) + _FIRST_DATA_LINE for i in mask[mask].index[:_MAX_LISTED]]
    more = f" and {int(mask.sum()) - len(lines)} more" if mask.sum() > len(lines) else ""
    return f"at line(s) {', '.join(map(str, lines))}{more}"


def _values(cells: pd.Series, mask: pd.Series) -> str:
    shown = list(dict.fromkeys(cells[mask].tolist()))[:_MAX_LISTED]
    return ", ".join(repr(v) for v in shown)


def select_features(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """The feature columns (all contract features except `exclude`), in contract order."""
    return frame.drop(columns=[TARGET, *exclude])
