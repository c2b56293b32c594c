"""Loading a registered model the safe way: only what the framework itself logs.

MLflow's own loader trusts the model: it unpickles a pickle, and for skops it reads the list of
trusted types from the model's own MLmodel file, so a crafted version can run code in whatever
loads it. Here a version loads only when its MLmodel says skops and the skops file holds no type
beyond skops' defaults and the reviewed `SKOPS_TRUSTED_TYPES`; anything else is `ModelRefused`.
Files that cannot be read (artifacts deleted, store down) are a `RegistryError` naming where.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from obesity.errors import ModelRefused, ObesityError, RegistryError, first_line

# Types skops may load besides its own defaults: reviewed once here, never "trust everything".
SKOPS_TRUSTED_TYPES = [
    "obesity.model.features.AddBMI",  # our own BMI step
    "obesity.features.AddBMI",  # the same class, by its path before 0.2 (obesity/features.py)
    "obesity.model.baseline.BMIRule",  # model=bmi_rule
    "sklearn.tree._tree.Tree",  # rf, et
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # hgb
]
REPAIR = ("repair: `python -m obesity.registry rollback`, or promote another version "
          "(`python -m obesity.registry promote VERSION`)")


def download(name: str, version: str | int, folder: Path) -> Path:
    """The files of `name` version `version` copied into `folder` (RegistryError if unreadable)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}",
                                                         dst_path=str(folder)))
        if not (local / "MLmodel").is_file():  # a deleted folder downloads as nothing
            raise FileNotFoundError("no MLmodel file there")
        return local
    except (MlflowException, OSError) as exc:
        try:
            where = MlflowClient().get_model_version_download_uri(name, str(version))
        except MlflowException:
            where = "its artifact location"
        cause = first_line(exc)
        raise RegistryError(f"{name} version {version}: its model files cannot be read from "
                            f"{where} ({cause}); {REPAIR}") from None


def skops_file(folder: Path, label: str) -> Path:
    """The skops file of a downloaded model, after checking that it is one (ModelRefused)."""
    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
        flavor = mlmodel["flavors"]["sklearn"]
        serialization, filename = flavor.get("serialization_format"), flavor["pickled_model"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ModelRefused(f"{label} is not a sklearn model logged by this framework "
                           f"(MLmodel: {type(exc).__name__} {first_line(str(exc))})") from None
    if serialization != "skops":
        raise ModelRefused(f"{label} is saved as {serialization!r}, not skops: loading it could "
                           "run any code it holds, so it is never loaded or promoted")
    path = (folder / filename).resolve()
    if folder.resolve() not in path.parents:
        raise ModelRefused(f"{label}: its MLmodel names a model file outside the model")
    if not path.is_file():  # deleted or not copied yet: an outage to retry, not a verdict
        raise RegistryError(f"{label}: its model file {filename} is missing from its artifacts; "
                            f"{REPAIR}")
    return path


def check_types(path: Path, label: str) -> None:
    """ModelRefused unless every type in the skops file is a default or a reviewed one."""
    import skops.io

    with _reading(label, f"; {REPAIR}"):
        untrusted = set(skops.io.get_untrusted_types(file=path)) - set(SKOPS_TRUSTED_TYPES)
    if untrusted:
        raise _unreviewed(label, untrusted)


@contextlib.contextmanager
def _reading(label: str, repair: str) -> Iterator[None]:
    """A skops file that cannot be read: RegistryError when it is unreadable now (permissions,
    I/O: retried, not refused for ever), ModelRefused when it is no skops archive that builds."""
    try:
        yield
    except ObesityError:
        raise
    except OSError as exc:
        raise RegistryError(f"{label}: its skops file cannot be read ({exc}){repair}") from None
    except Exception as exc:
        raise ModelRefused(f"{label}: its skops file cannot be read ({exc})") from None


def _unreviewed(label: str, types: Any) -> ModelRefused:
    return ModelRefused(f"{label} holds types nobody reviewed for loading: "
                        f"{', '.join(sorted(map(str, types)))}")


def check(name: str, version: str | int) -> None:
    """Is this version one the framework would load? (ModelRefused / RegistryError if not)"""
    with checked_file(name, version):
        pass


@contextlib.contextmanager
def checked_file(name: str, version: str | int) -> Iterator[Path]:
    """The skops file of a version, downloaded into a temporary folder and checked (not loaded);
    the copy is removed when the block ends."""
    label = f"{name} version {version}"
    with tempfile.TemporaryDirectory(prefix="obesity-model-") as tmp:
        path = skops_file(download(name, version, Path(tmp)), label)
        check_types(path, label)
        yield path


def load_file(path: Path, label: str | None = None) -> Any:
    """Load a skops file (of a registered version: `label`) with skops' defaults and the reviewed
    types only: skops audits every type before it builds anything (ModelRefused naming the
    others), the same audit `check_types` runs without loading."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    repair = f"; {REPAIR}" if label else ""  # a registered version's, not a plain file's
    label = label or str(path)
    with _reading(label, repair):
        try:
            return skops.io.load(path, trusted=SKOPS_TRUSTED_TYPES)
        except UntrustedTypesFoundException as exc:
            found = exc.args[0] if exc.args and isinstance(exc.args[0], set) else {str(exc)}
            raise _unreviewed(label, found) from None


def load_pipeline(name: str, version: str | int) -> Any:
    """The sklearn Pipeline of a registered version, loaded only after the checks above (one
    audit of its types: the load's own)."""
    label = f"{name} version {version}"
    with tempfile.TemporaryDirectory(prefix="obesity-model-") as tmp:
        return load_file(skops_file(download(name, version, Path(tmp)), label), label)


def artifact_path(relative: str, label: str) -> str:
    """`relative` as a plain path inside a run's artifacts, or ModelRefused: a tag that names a
    file must never reach one outside them (`../`, `%2e%2e/`, an absolute path, a drive). Our own
    tags are plain relative paths, so anything escaped or unusual is refused, not decoded."""
    clean = posixpath.normpath(relative)
    odd = set(relative) & set("%\\:\x00") or any(ord(c) < 32 for c in relative)
    if not relative or odd or relative.startswith("/") or clean == ".." or clean.startswith("../") \
            or clean == ".":
        raise ModelRefused(f"{label}: {relative!r} is not a path inside the version's own artifacts")
    return clean


def run_file(run_id: str, relative: str, folder: Path, label: str) -> Path:
    """One file of a run's artifacts, downloaded into `folder`; the path is checked before (it
    must stay inside the artifacts) and after (the copy must be a file inside `folder`)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    clean = artifact_path(relative, label)
    try:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=clean,
                                                         dst_path=str(folder))).resolve()
    except (MlflowException, OSError) as exc:  # gone, or the store is down: not a verdict
        raise RegistryError(f"{label}: {clean} cannot be read from run {run_id} "
                            f"({first_line(exc)})") from None
    if folder.resolve() not in local.parents or not local.is_file():
        raise ModelRefused(f"{label}: {relative!r} is not a file inside the version's own artifacts")
    return local


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
