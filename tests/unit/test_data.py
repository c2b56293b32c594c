"""The data contract on the real file and on small bad files made here."""

from __future__ import annotations

import pandas as pd
import pytest

from obesity.data.contract import CLASSES, FEATURE_NAMES, FEATURES, TARGET, Numeric
from obesity.data.load import load_dataset
from obesity.data.split import split_dataset
from obesity.errors import DataError
from tests.helpers import RAW_CSV, RAW_MD5, write_lines


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(RAW_CSV)


def test_real_file_matches_its_dvc_pointer_and_the_contract(dataset):
    pointer = (RAW_CSV.parent / (RAW_CSV.name + ".dvc")).read_text()
    assert f"md5: {dataset.md5}" in pointer and dataset.md5 == RAW_MD5
    assert list(dataset.frame.columns) == [*FEATURE_NAMES, TARGET]
    assert set(dataset.frame[TARGET]) == set(CLASSES)
    assert dataset.frame.select_dtypes("number").shape[1] == 8


def test_the_typical_person_is_the_datas_median_and_most_frequent_levels(dataset):
    """The page's form starts from `typical`: the real file's median (to the column's step) or
    most frequent level, inside the column's own range."""
    raw = pd.read_csv(RAW_CSV)
    for col in FEATURES:
        if isinstance(col, Numeric):
            median = raw[col.name].median()
            assert col.typical == pytest.approx(round(median / col.step) * col.step), col.name
            assert col.low <= col.typical <= col.high and col.description
        else:
            assert col.typical == raw[col.name].mode()[0] and col.typical in col.levels, col.name


def test_exact_duplicates_are_dropped_and_counted(dataset):
    raw = pd.read_csv(RAW_CSV)
    assert dataset.rows_raw == len(raw) == 2111
    assert dataset.duplicates_dropped == int(raw.duplicated().sum()) == 24
    assert not dataset.frame.duplicated().any()


def test_split_is_stratified_seeded_and_disjoint(dataset):
    a = split_dataset(dataset, 0.2, seed=42)
    b = split_dataset(dataset, 0.2, seed=42)
    c = split_dataset(dataset, 0.2, seed=43)
    assert a.X_test.index.equals(b.X_test.index)
    assert not a.X_test.index.equals(c.X_test.index)
    assert a.X_train.index.intersection(a.X_test.index).empty
    assert len(a.X_train) + len(a.X_test) == dataset.rows
    share_train = a.y_train.value_counts(normalize=True)
    share_test = a.y_test.value_counts(normalize=True)
    assert (share_train - share_test).abs().max() < 0.01


def test_lifestyle_features_leave_out_height_and_weight(dataset):
    s = split_dataset(dataset, 0.2, seed=42, exclude=["Height", "Weight"])
    assert list(s.X_train.columns) == [c for c in FEATURE_NAMES if c not in ("Height", "Weight")]


def test_missing_file_names_it_and_suggests_dvc_pull(tmp_path):
    with pytest.raises(DataError, match=r"nope.csv: no such file"):
        load_dataset(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        load_dataset(tmp_path / "empty.csv")


def test_header_only(tmp_path, lines):
    with pytest.raises(DataError, match=r"no data rows"):
        load_dataset(write_lines(tmp_path, lines[:1]))


def test_binary_file_is_unreadable_not_a_crash(tmp_path):
    path = tmp_path / "blob.csv"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DataError, match=r"blob\.csv"):
        load_dataset(path)


def test_a_directory_is_not_a_file(tmp_path):
    with pytest.raises(DataError, match=r"no such file"):
        load_dataset(tmp_path)


def test_missing_column_is_named(tmp_path, lines):
    frame = pd.read_csv(RAW_CSV).drop(columns=["FAVC"]).head(20)
    path = tmp_path / "no_favc.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing column\(s\): FAVC"):
        load_dataset(path)


def test_unknown_category_names_column_value_and_line(tmp_path, lines):
    rows = lines[:12]
    rows[5] = rows[5].replace("Public_Transportation", "Teleport")
    with pytest.raises(DataError) as info:
        load_dataset(write_lines(tmp_path, rows))
    msg = str(info.value)
    assert "'MTRANS'" in msg and "'Teleport'" in msg and "line(s) 6" in msg


def set_cell(rows: list[str], line: int, column: str, value: str) -> None:
    """Put `value` in `column` of CSV line `line` (1-based, the header is line 1)."""
    cells = rows[line - 1].split(",")
    cells[rows[0].split(",").index(column)] = value
    rows[line - 1] = ",".join(cells)


def test_nan_and_blank_cells_are_missing_values_with_lines(tmp_path, lines):
    rows = lines[:12]
    set_cell(rows, 4, "Age", "")
    set_cell(rows, 9, "Age", "NaN")
    with pytest.raises(DataError, match=r"column 'Age': missing values at line\(s\) 4, 9"):
        load_dataset(write_lines(tmp_path, rows))


def test_out_of_range_and_non_numbers_are_named(tmp_path, lines):
    rows = lines[:12]
    set_cell(rows, 3, "Height", "175")  # centimetres, not metres
    set_cell(rows, 8, "Weight", "heavy")
    set_cell(rows, 11, "FAF", "inf")
    with pytest.raises(DataError) as info:
        load_dataset(write_lines(tmp_path, rows))
    msg = str(info.value)
    assert "column 'Height': outside [1, 2.5]: '175' at line(s) 3" in msg
    assert "column 'Weight': not a number: 'heavy' at line(s) 8" in msg
    assert "column 'FAF': outside [0, 3]: 'inf' at line(s) 11" in msg
    assert "3 problem(s)" in msg


def test_ragged_rows_are_a_csv_error(tmp_path, lines):
    rows = lines[:5]
    rows[2] += ",extra,cells"
    with pytest.raises(DataError, match=r"not a well-formed CSV"):
        load_dataset(write_lines(tmp_path, rows))


@pytest.mark.parametrize("rows_of_one_class, overrides, needs", [
    (1, [], "needs at least 2 in every class"),
    (3, ["cv_folds=5"], "cv_folds=5 needs at least 5 in every class"),
])
def test_data_too_small_for_the_split_is_named_before_anything_is_recorded(
        tmp_path, lines, rows_of_one_class, overrides, needs):
    """One class with too few rows: one line naming the class, its count and what the settings
    need; no run opened, no store created."""
    from obesity.training import job as training
    from tests.helpers import compose_train

    header, body = lines[0], lines[1:]
    rare = [row for row in body if row.endswith(",Insufficient_Weight")][:rows_of_one_class]
    others = [r for r in body if not r.endswith(",Insufficient_Weight")]
    small = write_lines(tmp_path, [header, *rare, *others])
    cfg = compose_train(["model=lr", f"data.path={small}", *overrides], tmp_path / "o")
    with pytest.raises(DataError, match=r"class 'Insufficient_Weight'") as error:
        training.run(cfg)
    assert needs in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "o" / "mlflow.db").exists()
