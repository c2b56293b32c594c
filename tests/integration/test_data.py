"""The data contract on the real file and on small bad files made here."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT, write_lines


def test_cli_on_bad_data_exits_non_zero_and_records_nothing_finished(tmp_path, lines):
    rows = lines[:30]
    rows[20] = rows[20].replace("Sometimes", "Often", 1)
    bad = write_lines(tmp_path, rows)
    proc = subprocess.run(
        [sys.executable, "-m", "obesity.train", f"data.path={bad}", f"paths.outputs={tmp_path}/o"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "unknown categories 'Often'" in proc.stderr and "line(s) 21" in proc.stderr
    assert "Traceback" not in proc.stderr
    db = tmp_path / "o" / "mlflow.db"
    if db.exists():  # a store may exist; it must not hold a FINISHED run
        import sqlite3

        with sqlite3.connect(db) as con:
            assert con.execute("select count(*) from runs where status='FINISHED'").fetchone()[0] == 0
