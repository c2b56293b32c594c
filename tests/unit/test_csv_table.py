"""CSV tables the service reads: what an attack tried on the header."""

from __future__ import annotations

import pytest


def test_a_csv_header_has_a_column_limit_and_duplicates_are_named_once():
    from obesity.data.contract import FEATURE_NAMES
    from obesity.serving import csv_table

    wide = ",".join([*FEATURE_NAMES, *(f"c{i}" for i in range(40_000))]).encode() + b"\n"
    with pytest.raises(csv_table.CsvRejected, match="at most 1000") as refused:
        csv_table.read(wide, 10)
    assert refused.value.status == 400
    twice = ",".join([*FEATURE_NAMES, *["x"] * 500, "Age"]).encode() + b"\n"
    with pytest.raises(csv_table.CsvRejected) as refused:
        csv_table.read(twice, 10)
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("Age", "column named twice in the header"), ("x", "column named twice in the header")]
