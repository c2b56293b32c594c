"""Labels as a CSV file (`request_id,label[,row]`): an upload to POST /feedback/csv, or a file
for `python -m obesity.feedback FILE`. Every bad line is named by its number (the header is
line 1)."""

from __future__ import annotations

import csv
import io

from obesity.feedback.store import MAX_NAMED, Label, LabelsRefused

COLUMNS = ("request_id", "label")  # required; `row` optional (0 when absent or empty)
MAX_ID = 128  # characters of a request id (the prediction log's column)


def read(text: str, limit: int | None = None) -> tuple[list[Label], list[str]]:
    """The labels of a CSV text and where each came from (`line N`); LabelsRefused (400) naming
    the lines of a malformed file, (413) over `limit` rows."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise LabelsRefused(400, "the file is empty (expected a header: request_id,label[,row])") from None
    except csv.Error as exc:
        raise LabelsRefused(400, f"line 1: not CSV: {exc}") from None
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in (*COLUMNS, "row")]
    if missing or unknown or len(set(header)) != len(header):
        raise LabelsRefused(400, f"line 1: the header must be request_id,label[,row] (got "
                                 f"{','.join(header)[:200]!r})")
    where = {name: header.index(name) for name in header}
    labels: list[Label] = []
    lines: list[str] = []
    bad: list[str] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # a blank line
            if limit is not None and len(labels) >= limit:
                raise LabelsRefused(413, f"at most {limit} labels a request; send the rest in "
                                         "another")
            if len(record) != len(header):
                bad.append(f"line {line}: {len(record)} cell(s), the header has {len(header)}")
                continue
            rid = record[where["request_id"]].strip()
            row_text = record[where["row"]].strip() if "row" in where else ""
            if not rid or len(rid) > MAX_ID:
                bad.append(f"line {line}: request_id must be 1 to {MAX_ID} characters")
                continue
            try:
                row = int(row_text) if row_text else 0
            except ValueError:
                bad.append(f"line {line}: row {row_text[:40]!r} is not a whole number")
                continue
            labels.append(Label(rid, record[where["label"]].strip(), row))
            lines.append(f"line {line}")
    except csv.Error as exc:
        bad.append(f"line {reader.line_num}: not CSV: {exc}")
    if bad:
        raise LabelsRefused(400, f"{len(bad)} bad line(s): {'; '.join(bad[:MAX_NAMED])}"
                                 + (f" and {len(bad) - MAX_NAMED} more" if len(bad) > MAX_NAMED
                                    else ""))
    if not labels:
        raise LabelsRefused(400, "the file has a header but no labels")
    return labels, lines
