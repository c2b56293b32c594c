"""The labelled traffic as data: a contract-valid CSV of the logged inputs and their labels, for
training (`data.extra`) and for DVC to version like the raw data."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from obesity.data.contract import FEATURE_NAMES, TARGET
from obesity.errors import DataError
from obesity.feedback.store import labelled_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exported:
    path: Path
    rows: int  # labelled rows written
    without_inputs: int  # labelled rows logged without inputs (monitor.log_inputs=false): left out
    md5: str
    dvc_file: Path | None  # the .dvc file that tracks it, when it was added to DVC


def export(url: str, model_name: str, path: Path, dvc: bool = True) -> Exported:
    """Write every currently labelled row of `model_name` (oldest first) to `path`; the same
    labels give the same bytes (and md5). With `dvc`, `dvc add` it when `path` lies in a DVC
    project."""
    from obesity.data.load import file_md5, load_dataset

    frame = labelled_rows(url, model_name)
    with_inputs = frame.dropna(subset=list(FEATURE_NAMES))
    if with_inputs.empty:
        raise DataError(f"no labelled rows with inputs for {model_name} in the prediction log "
                        f"({len(frame)} labelled without inputs): nothing to export")
    table = with_inputs[list(FEATURE_NAMES)].assign(**{TARGET: with_inputs["label"]})
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(partial, index=False, lineterminator="\n")
        partial.replace(path)  # a reader never sees half a file
    except OSError as exc:
        raise DataError(f"{path}: cannot write the labelled rows there: "
                        f"{exc.strerror or exc}") from None
    load_dataset(path)  # what training will read: contract-valid, or DataError naming the line
    dvc_file = _dvc_add(path) if dvc else None
    return Exported(path, len(table), len(frame) - len(with_inputs), file_md5(path), dvc_file)


def _dvc_add(path: Path) -> Path | None:
    """`dvc add path` when it lies in a DVC project (a `.dvc` folder above it); None otherwise."""
    root = next((p for p in path.resolve().parents if (p / ".dvc").is_dir()), None)
    if root is None:
        log.info("%s is not in a DVC project: not tracked (`dvc add` it where it should live)", path)
        return None
    beside = Path(sys.executable).with_name("dvc")
    tool = str(beside) if beside.is_file() else shutil.which("dvc")
    if tool is None:
        raise DataError(f"{path} lies in the DVC project {root} but no `dvc` command is found: "
                        "install it, or export with --no-dvc")
    done = subprocess.run([tool, "add", "--quiet", str(path.resolve())], cwd=root,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise DataError(f"dvc add {path} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return path.with_name(path.name + ".dvc")
