"""Model refusal (obesity/model/files.py) on crafted files: each refused with its reason, and
nothing in them is executed. Seconds, no registry: the checks work on a downloaded model folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import skops.io

from obesity.errors import ModelRefused, RegistryError
from obesity.model import files

MLMODEL = "flavors:\n  sklearn:\n    pickled_model: {path}\n    serialization_format: {fmt}\n"


class Unreviewed:
    """A type nobody reviewed: creating it (as a loader would) leaves a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict) -> None:
        Path(state["marker"]).touch()
        self.__dict__.update(state)


def model_folder(folder: Path, path: str = "model.skops", fmt: str = "skops") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text(MLMODEL.format(path=path, fmt=fmt))
    return folder


# checking without loading (registration) and loading (serving, monitoring) refuse alike
CHECK_OR_LOAD = [files.check_types, files.load_file]


@pytest.mark.parametrize("check", CHECK_OR_LOAD)
def test_a_skops_file_holding_an_unreviewed_type_is_refused_without_running_it(tmp_path, check):
    marker = tmp_path / "it-ran"
    folder = model_folder(tmp_path / "model")
    skops.io.dump({"model": Unreviewed(str(marker))}, folder / "model.skops")
    path = files.skops_file(folder, "v9")
    with pytest.raises(ModelRefused, match=r"v9 holds types nobody reviewed.*Unreviewed"):
        check(path, "v9")
    assert not marker.exists()


def test_a_skops_file_of_reviewed_types_loads(tmp_path):
    from obesity.model.features import AddBMI

    folder = model_folder(tmp_path / "model")
    skops.io.dump({"step": AddBMI()}, folder / "model.skops")
    loaded = files.load_file(files.skops_file(folder, "v9"), "v9")
    assert isinstance(loaded["step"], AddBMI)


def test_an_mlmodel_naming_a_file_outside_the_model_is_refused(tmp_path):
    (tmp_path / "elsewhere.skops").write_bytes(b"anything")
    for outside in ("../elsewhere.skops", str(tmp_path / "elsewhere.skops")):
        folder = model_folder(tmp_path / "model", path=outside)
        with pytest.raises(ModelRefused, match="names a model file outside the model"):
            files.skops_file(folder, "v9")


@pytest.mark.parametrize("check", CHECK_OR_LOAD)
def test_an_unreadable_skops_file_is_refused_naming_why(tmp_path, check):
    folder = model_folder(tmp_path / "model")
    (folder / "model.skops").write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(ModelRefused, match="v9: its skops file cannot be read"):
        check(files.skops_file(folder, "v9"), "v9")


@pytest.mark.parametrize("text, why", [
    ("flavors: [unclosed", "ParserError"),
    ("flavors:\n  python_function: {}\n", "KeyError"),
    ("just a string", "TypeError"),
])
def test_a_malformed_mlmodel_is_refused_naming_why(tmp_path, text, why):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text(text)
    with pytest.raises(ModelRefused, match=rf"not a sklearn model logged by this framework.*{why}"):
        files.skops_file(folder, "v9")


def test_a_pickle_is_refused_before_it_is_opened(tmp_path):
    folder = model_folder(tmp_path / "model", path="model.pkl", fmt="cloudpickle")
    with pytest.raises(ModelRefused, match="saved as 'cloudpickle', not skops"):
        files.skops_file(folder, "v9")


def test_a_missing_file_is_an_outage_to_retry_not_a_refusal(tmp_path):
    folder = model_folder(tmp_path / "model")
    with pytest.raises(RegistryError, match=r"model file model\.skops is missing") as raised:
        files.skops_file(folder, "v9")
    assert not isinstance(raised.value, ModelRefused)
