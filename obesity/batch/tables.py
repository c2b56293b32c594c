"""The files a batch is scored from and into: CSV or Parquet (by extension), read and written a
chunk at a time so that memory stays flat whatever the file's size.

A CSV file is read as text (the contract, not pandas' type guessing, decides what is a number)
with every line counted, blank ones included, so a row is named by its line as an editor shows
it. A Parquet file keeps its types; a row is named by its number (1 = the first).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from obesity.data.contract import FEATURE_NAMES
from obesity.errors import DataError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def file_format(path: Path) -> str:
    """csv or parquet, from the file's extension; DataError naming the file otherwise."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown file type {path.suffix or '(no extension)'!r}: "
                        f"use one of {', '.join(FORMATS)}")
    return kind


class Source:
    """An input file: its columns, then its rows a chunk at a time (`chunks`)."""

    def __init__(self, path: Path, chunk_rows: int) -> None:
        self.path, self.chunk_rows = path, chunk_rows
        self.kind = file_format(path)
        if not path.is_file():
            raise DataError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
        self.columns = self._header() if self.kind == "csv" else self._parquet_columns()
        counts = Counter(self.columns)
        missing = [name for name in FEATURE_NAMES if name not in counts]
        twice = [name for name, n in counts.items() if n > 1]
        if missing or twice:
            said = [f"missing input column(s): {', '.join(missing)}"] if missing else []
            said += [f"column(s) named twice: {', '.join(map(str, twice))}"] if twice else []
            raise DataError(f"{path}: {'; '.join(said)} (the header needs the 16 input "
                            "columns of the data set, once each)")

    @property
    def unit(self) -> str:
        return "line" if self.kind == "csv" else "row"

    def position(self, index: int) -> int:
        """What a user calls row `index` (0-based, blank lines counted): its CSV line (the header
        is line 1) or its Parquet row number (1-based)."""
        return index + (2 if self.kind == "csv" else 1)

    def rows(self) -> int | None:
        """How many rows the file holds, when that is known without reading it (Parquet)."""
        if self.kind == "csv":
            return None
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(self.path).metadata.num_rows)

    def chunks(self) -> Iterator[pd.DataFrame]:
        """The rows, `chunk_rows` at a time; the index counts rows from 0 across chunks."""
        try:
            yield from (self._csv_chunks() if self.kind == "csv" else self._parquet_chunks())
        except pd.errors.ParserError as exc:  # e.g. a line with more cells than the header
            raise DataError(f"{self.path}: not a well-formed CSV: {str(exc).strip()}") from None
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read: {exc.strerror or exc}") from None

    def _header(self) -> list[str]:
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as fh:
                header = next(csv.reader(fh), [])
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except csv.Error as exc:
            raise DataError(f"{self.path}: line 1: not CSV: {exc}") from None
        if not any(cell.strip() for cell in header):
            raise DataError(f"{self.path}: the file is empty or its first line is blank: it needs "
                            "a header line with the 16 input columns")
        return [cell.strip() for cell in header]

    def _csv_chunks(self) -> Iterator[pd.DataFrame]:
        reader = pd.read_csv(self.path, dtype=str, na_filter=False, skip_blank_lines=False,
                             encoding="utf-8-sig", chunksize=self.chunk_rows)
        with reader:
            for chunk in reader:
                chunk.columns = self.columns
                yield chunk

    def _parquet_columns(self) -> list[str]:
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(self.path).schema_arrow.names)
        except Exception as exc:  # pyarrow's ArrowInvalid and kin: not a Parquet file
            raise DataError(f"{self.path}: not a Parquet file: {exc}") from None

    def _parquet_chunks(self) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        start = 0
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=self.chunk_rows):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame


class Target:
    """An output file written a chunk at a time into `<name>.partial`, renamed to its name only
    when the whole file is written (`commit`): a failed run leaves no half file behind, and an
    earlier file of that name stays until the new one is complete."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = file_format(path)
        self.partial = path.with_name(path.name + ".partial")
        self._writer: Any = None
        self._schema: Any = None

    def __enter__(self) -> Target:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.partial.unlink(missing_ok=True)
        except OSError as exc:
            raise DataError(f"{self.path}: cannot write there: {exc.strerror or exc}") from None
        return self

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        try:
            if self._writer is None:
                self._schema = pa.Schema.from_pandas(frame, preserve_index=False)
                self._writer = self._open(self._schema)
            self._writer.write_table(pa.Table.from_pandas(frame, schema=self._schema,
                                                          preserve_index=False))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # a Parquet column changing type
            raise DataError(f"{self.path}: cannot write rows {frame.index[0]}...: {exc}") from None
        except OSError as exc:
            raise DataError(f"{self.path}: cannot write: {exc.strerror or exc}") from None

    def _open(self, schema: Any) -> Any:
        if self.kind == "csv":
            import pyarrow.csv as pacsv

            return pacsv.CSVWriter(str(self.partial), schema,
                                   write_options=pacsv.WriteOptions(quoting_style="needed"))
        import pyarrow.parquet as pq

        return pq.ParquetWriter(str(self.partial), schema)

    def commit(self) -> None:
        self._writer.close()
        self._writer = None
        os.replace(self.partial, self.path)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._writer is not None:  # not committed: the run failed
            self._writer.close()
        self.partial.unlink(missing_ok=True)


class Rejects:
    """Rows that break the contract (on_error=skip), as CSV: where each was, its problems, its
    cells as read. Written as `<name>.partial` and renamed at `commit` like the output."""

    def __init__(self, path: Path, unit: str, columns: list[str]) -> None:
        self.path, self.unit, self.columns = path, unit, columns
        self.partial = path.with_name(path.name + ".partial")
        self.count = 0
        self._fh: Any = None

    def add(self, rows: pd.DataFrame, positions: list[int], problems: list[str]) -> None:
        if self._fh is None:
            self._fh = self.partial.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._fh, lineterminator="\n")
            self._writer.writerow([self.unit, "problems", *self.columns])
        for cells, where, said in zip(rows.itertuples(index=False), positions, problems, strict=True):
            self._writer.writerow([where, said, *("" if pd.isna(c) else c for c in cells)])
        self.count += len(rows)

    def commit(self) -> Path | None:
        """The rejects file, or None when no row was rejected (an older one is removed)."""
        if self._fh is None:
            self.path.unlink(missing_ok=True)
            return None
        self._fh.close()
        self._fh = None
        os.replace(self.partial, self.path)
        return self.path

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self.partial.unlink(missing_ok=True)
