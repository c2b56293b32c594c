"""`python -m obesity.predict`: a file scored offline by a real registered version, its bad rows
named as the service names them, nothing half-written when it stops."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from obesity.batch.score import score_file
from obesity.config.compose import compose, typed
from obesity.config.schemas import PredictConfig
from obesity.data.contract import CLASSES, FEATURE_NAMES
from obesity.data.load import file_md5
from obesity.errors import DataError
from obesity.model import files as model_files
from obesity.predict import main as predict_main
from obesity.runtime import using
from obesity.serving import csv_table
from tests.helpers import ROOT, register

PROBABILITIES = [csv_table.PROBABILITY + c for c in CLASSES]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("predicted")
    register(outputs, ["model=lr"])  # champion v1, with its twin
    return outputs


@pytest.fixture(scope="module")
def people(lines, tmp_path_factory):
    """A CSV of 40 real rows with an id column, and 4 bad rows and a blank line among them."""
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:41]]
    for i, row in enumerate(rows):
        row["id"] = f"p{i}"
    rows[3]["Age"] = "abc"  # not a number
    rows[7]["Height"] = "170"  # centimetres: out of range
    rows[7]["Gender"] = "F"  # and an unknown level, same row
    rows[20]["Weight"] = ""  # missing
    rows[33]["CALC"] = "Daily"  # unknown level
    path = tmp_path_factory.mktemp("people") / "people.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", *header])
        for i, row in enumerate(rows):
            writer.writerow([row["id"], *(row[c] for c in header)])
            if i == 10:
                writer.writerow([])  # a blank line: skipped, still counted as a line
    return path


def predict(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obesity.predict", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def config(outputs, *overrides: str) -> PredictConfig:
    return typed(compose([f"paths.outputs={outputs}", *overrides], config_name="predict"),
                 PredictConfig)


def test_skip_scores_good_rows_and_names_bad_ones_as_the_service_does(outputs, people, tmp_path):
    out = tmp_path / "scored.csv"
    result = predict(str(people), str(out), f"paths.outputs={outputs}", "on_error=skip")
    assert result.returncode == 0, result.stderr
    assert f"scored 36 of 40 row(s) of {people}" in result.stdout
    assert "obesity_full version 1 (champion, onnx)" in result.stdout
    assert f"4 rejected: {tmp_path / 'scored.rejects.csv'}" in result.stdout

    scored = pd.read_csv(out, dtype=str)
    assert list(scored.columns) == ["id", *FEATURE_NAMES, "NObeyesdad", *csv_table.OUTPUT_COLUMNS]
    bad_ids = {"p3", "p7", "p20", "p33"}
    assert scored["id"].tolist() == [f"p{i}" for i in range(40) if f"p{i}" not in bad_ids]
    # the answers are the registered pipeline's own (through its verified twin), row by row
    with using():
        from obesity.stores import tracking

        tracking.client(config(outputs).registry)
        pipeline = model_files.load_pipeline("obesity_full", 1)
    inputs = pd.read_csv(out)[list(FEATURE_NAMES)]
    assert scored["prediction"].tolist() == pipeline.predict(inputs).tolist()
    expected = pipeline.predict_proba(inputs)[:, [list(pipeline.classes_).index(c) for c in CLASSES]]
    np.testing.assert_allclose(scored[PROBABILITIES].astype(float), expected, atol=2e-5)

    # the rejects: each bad row's line and every problem, exactly what POST /predict/csv says
    rejects = list(csv.DictReader((tmp_path / "scored.rejects.csv").open()))
    assert [r["id"] for r in rejects] == ["p3", "p7", "p20", "p33"]
    found = {(int(r["line"]), *p.split(": ", 1)) for r in rejects for p in r["problems"].split("; ")}
    with pytest.raises(csv_table.CsvRejected) as service:
        csv_table.read(people.read_bytes(), limit=1000)
    assert found == {(e.line, e.field, e.message) for e in service.value.errors}
    assert {line for line, *_ in found} == {5, 9, 23, 36}  # lines after the blank one shift

    record = json.loads((tmp_path / "scored.csv.json").read_text())
    assert record["model"] | {"run_id": None} == {
        "name": "obesity_full", "version": "1", "alias": "champion", "run_id": None,
        "backend": "onnx", "integrity": "unsigned",
        "data_md5": file_md5(ROOT / "data/raw/ObesityDataSet_raw_and_data_sinthetic.csv")}
    assert record["input"] == {"path": str(people.resolve()), "md5": file_md5(people)}
    assert (record["rows"], record["scored"], record["rejected"]) == (40, 36, 4)


def test_fail_writes_nothing_and_names_the_first_bad_rows(outputs, people, tmp_path, capsys):
    """The command's own main() in this process (the subprocess above shows the entrypoint)."""
    out = tmp_path / "scored.csv"
    out.write_text("an earlier output\n")
    with pytest.raises(SystemExit) as exit_:
        predict_main([str(people), str(out), f"paths.outputs={outputs}"])
    assert exit_.value.code == 1
    said = capsys.readouterr()
    assert said.out == ""
    error = said.err.strip()
    assert error.startswith(f"error: {people}: 4 row(s) of lines 2-42 break the data contract: "
                            "line 5: Age: not a number (got 'abc'); line 9: Gender: must be one "
                            "of Female, Male (got 'F'); Height: ")
    assert "line 23: Weight: missing value; line 36: CALC: must be one of" in error
    assert "Nothing written (on_error=skip" in error and "\n" not in error
    assert out.read_text() == "an earlier output\n"  # kept: the new file was never complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.csv"]


def test_parquet_in_chunks_gives_the_pipelines_answers(outputs, people, tmp_path):
    """Parquet in and out (numbers typed), chunks of 7 rows, the verified ONNX twin: the same
    answers as the sklearn pipeline on the CSV, bad rows named by their row number across chunks."""
    frame = pd.read_csv(people).dropna(how="all")
    frame["Age"] = pd.to_numeric(frame["Age"], errors="coerce")  # "abc" -> null: missing
    frame.to_parquet(tmp_path / "people.parquet", index=False)
    with using():
        done = score_file(config(outputs, "chunk_rows=7", "on_error=skip"),
                          tmp_path / "people.parquet", tmp_path / "scored.parquet")
        reference = score_file(config(outputs, "on_error=skip", "use_onnx=false"), people,
                               tmp_path / "ref.csv")
    assert (done.rows, done.scored, done.rejected) == (40, 36, 4)
    assert "(champion, onnx)" in done.model and "(champion, sklearn)" in reference.model
    scored, ref = pd.read_parquet(tmp_path / "scored.parquet"), pd.read_csv(tmp_path / "ref.csv")
    assert scored["id"].tolist() == ref["id"].tolist()
    assert scored["Age"].dtype == np.float64  # the input's types are kept
    assert scored["prediction"].tolist() == ref["prediction"].tolist()
    np.testing.assert_allclose(scored[PROBABILITIES], ref[PROBABILITIES], atol=1e-4)
    rejects = pd.read_csv(tmp_path / "scored.rejects.csv")
    assert rejects["row"].tolist() == [4, 8, 21, 34]  # 1-based, the blank line dropped above
    assert rejects["problems"].iloc[0] == "Age: missing value"


@pytest.mark.parametrize(("name", "text", "said"), [
    ("people.txt", "x\n", "people.txt: unknown file type '.txt': use one of .csv, .parquet, .pq"),
    ("people.csv", "", "people.csv: the file is empty or its first line is blank"),
    ("people.csv", "Gender,Age\nMale,30\n", "people.csv: missing input column(s): Height, Weight,"),
    ("people.csv", None, "people.csv: no such file"),
    ("people.parquet", "not parquet", "people.parquet: not a Parquet file"),
])
def test_bad_files_are_named(outputs, tmp_path, name, text, said):
    source = tmp_path / name
    if text is not None:
        source.write_text(text)
    with using(), pytest.raises(DataError, match=None) as error:
        score_file(config(outputs), source, tmp_path / "out.csv")
    assert said in str(error.value)
    assert list(tmp_path.iterdir()) == ([source] if text is not None else [])


def test_duplicate_columns_and_overwriting_the_input_are_refused(outputs, people, lines, tmp_path):
    doubled = tmp_path / "doubled.csv"
    doubled.write_text(lines[0] + ",Age\n" + lines[1] + ",30\n")
    with using():
        with pytest.raises(DataError, match="column\\(s\\) named twice: Age"):
            score_file(config(outputs), doubled, tmp_path / "out.csv")
        with pytest.raises(DataError, match="the output would overwrite the input"):
            score_file(config(outputs), people, people)
        header_only = tmp_path / "header.csv"
        header_only.write_text(lines[0] + "\n\n")
        with pytest.raises(DataError, match="has a header but no rows"):
            score_file(config(outputs), header_only, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
