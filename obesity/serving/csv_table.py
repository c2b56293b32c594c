"""CSV in, CSV out (POST /predict/csv and the page's upload): a file in the data set's own format,
every bad cell named by its line and column, the predictions appended as columns.

Python's csv module reads and writes (quotes, embedded newlines, a byte-order mark); each row is
then checked by the same code as a JSON body (`schema.person_errors`), so the two never disagree.
Columns other than the 16 inputs (the label, an id) are kept as they are; a file that already has
prediction columns (a download sent again) gets them replaced.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from obesity.data.contract import CLASSES, FEATURE_NAMES, NUMERIC_FEATURES
from obesity.serving.schema import FieldError, Person, RowPrediction, clip, person_errors

MEDIA_TYPE = "text/csv"
PREDICTION = "prediction"
PROBABILITY = "probability_"  # + a class name: one column per class
OUTPUT_COLUMNS = (PREDICTION, *(PROBABILITY + c for c in CLASSES))
MAX_ERRORS = 100  # listed in one answer; the count of all is in its detail
MAX_COLUMNS = 1000  # columns in a file: the 16 inputs, the label, ids, earlier predictions...


class CsvRejected(ValueError):
    """A file that cannot be predicted: the HTTP status, what is wrong, the cells at fault."""

    def __init__(self, status: int, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors or []


@dataclass(frozen=True)
class Table:
    header: list[str]
    records: list[list[str]]  # the cells as sent
    persons: list[Person]  # type: ignore[valid-type]


def read(body: bytes, limit: int) -> Table:
    """The rows of a CSV file, each a checked `Person`; CsvRejected naming every bad cell (the
    first MAX_ERRORS), a file over `limit` rows (413) or one that is not CSV text."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvRejected(400, f"the file is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                               f"at offset {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header, where = _header(reader)
        records: list[list[str]] = []
        lines: list[int] = []  # where each record ends in the file (1 = the header's line)
        values: list[dict[str, object]] = []
        errors: list[FieldError] = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # a blank line
            if len(records) == limit:
                raise CsvRejected(413, f"a file holds at most {limit} rows (line "
                                       f"{reader.line_num} is row {limit + 1})")
            records.append(record)
            lines.append(reader.line_num)
            row, unread = _cells(record, header, where, reader.line_num)
            values.append(row)
            errors += unread
    except csv.Error as exc:
        raise CsvRejected(400, f"line {reader.line_num}: not CSV: {exc}",
                          [FieldError("row", f"not CSV: {exc}", reader.line_num)]) from None
    if not records:
        raise CsvRejected(400, "the file has a header but no rows")
    if not errors:
        try:  # every row at once; only a file msgspec refuses is walked cell by cell
            persons = msgspec.convert(values, list[Person])  # type: ignore[valid-type]
            return Table(header, records, persons)
        except msgspec.ValidationError:
            pass
    for row, line in zip(values, lines, strict=True):
        errors += [FieldError(e.field, e.message, line) for e in person_errors(row)
                   if e.field in row]  # ranges, levels, finite numbers of the cells that parsed
    errors.sort(key=lambda e: (e.line or 0, where.get(e.field, -1)))
    shown = "" if len(errors) <= MAX_ERRORS else f"; the first {MAX_ERRORS} are listed"
    problems = f"{len(errors)} problem{'s' if len(errors) > 1 else ''}"
    raise CsvRejected(400, f"invalid rows: {problems} in {len(records)} rows{shown}",
                      errors[:MAX_ERRORS])


def _header(reader: csv.Reader) -> tuple[list[str], dict[str, int]]:  # type: ignore[name-defined]
    """The header (its first non-blank line) and where each input column is in it."""
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [cell.strip() for cell in row]
            break
    else:
        raise CsvRejected(400, "the file is empty: send a header line with the 16 input columns "
                               "(as in the data set), then one line per person")
    line = reader.line_num
    if len(header) == 1 and (sep := next((c for c in ";\t|" if c in header[0]), None)):
        raise CsvRejected(400, f"line {line}: the columns are separated by {sep!r}: send the file "
                               "comma-separated, as the data set is",
                          [FieldError("header", f"separated by {sep!r}, not by commas", line)])
    if len(header) > MAX_COLUMNS:
        raise CsvRejected(400, f"line {line}: the header has {len(header):,} columns; a file "
                               f"holds at most {MAX_COLUMNS} (the 16 inputs and your own)",
                          [FieldError("header", f"{len(header):,} columns", line)])
    counts = Counter(header)
    errors = [FieldError(name, "column missing from the header", line)
              for name in FEATURE_NAMES if name not in counts]
    errors += [FieldError(clip(name), "column named twice in the header", line)
               for name, n in counts.items() if name and n > 1]
    if errors:
        raise CsvRejected(400, "the header does not have the 16 input columns, once each", errors)
    return header, {name: header.index(name) for name in FEATURE_NAMES}


def _cells(record: list[str], header: list[str], where: dict[str, int],
           line: int) -> tuple[dict[str, object], list[FieldError]]:
    """One record's input values (numbers parsed) and what could not be read: a record of the
    wrong width, a numeric cell that is not a number."""
    if len(record) != len(header):
        return {}, [FieldError("row", f"{len(record)} cells, the header has {len(header)}", line)]
    errors: list[FieldError] = []
    values: dict[str, object] = {}
    for name, i in where.items():
        cell = record[i]
        if name not in NUMERIC_FEATURES:
            values[name] = cell
            continue
        try:
            values[name] = float(cell)
        except ValueError:
            problem = "missing value" if not cell.strip() else f"not a number (got {clip(repr(cell))})"
            errors.append(FieldError(name, problem, line))
    return values, errors


def write(table: Table, answers: Sequence[RowPrediction]) -> str:
    """The file as sent (minus earlier prediction columns) with this model's prediction and the
    probability of each class appended to every row."""
    keep = [i for i, name in enumerate(table.header) if name not in OUTPUT_COLUMNS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*(table.header[i] for i in keep), *OUTPUT_COLUMNS])
    for record, answer in zip(table.records, answers, strict=True):
        writer.writerow([*(record[i] for i in keep), answer.prediction,
                         *(f"{answer.probabilities.get(c, 0.0):.6f}" for c in CLASSES)])
    return out.getvalue()
