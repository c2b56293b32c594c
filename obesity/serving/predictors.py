"""What answers a prediction: the ONNX twin of a version when it is verified (fast), else its
sklearn pipeline; both behind one `Predictor` interface, with the version they came from."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from obesity.config.schemas import RegistryConfig
from obesity.errors import ObesityError, RegistryError, first_line
from obesity.model import files as model_files
from obesity.registry import manifest
from obesity.registry.manifest import Integrity

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)


class Predictor(Protocol):
    backend: str
    classes: list[str]  # the probability columns, in order

    def predict(self, rows: Sequence[Any]) -> tuple[list[str], np.ndarray]:
        """Labels and class probabilities (columns in `classes` order) for objects with the
        raw feature columns as attributes."""
        ...

    def predict_columns(self, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The same for many rows at once, given as columns (a frame: a file being scored)."""
        ...


class LoadOptions(Protocol):
    """What loading a version needs to know (the service's config, or the batch scorer's)."""

    registry: RegistryConfig
    use_onnx: bool
    export_onnx: bool


class OnnxPredictor:
    """ONNX Runtime on the verified twin: no pandas, no sklearn on the request path."""

    backend = "onnx"

    def __init__(self, model_bytes: bytes, threads: int = 1) -> None:
        from obesity.model import onnx_twin

        self.session = onnx_twin.session(model_bytes, threads)
        self.classes = onnx_twin.classes(self.session)
        self.kinds = onnx_twin.input_kinds(self.session)
        self.feeds = onnx_twin.feeds  # the feeding code the twin was verified with

    def predict(self, rows: Sequence[Any]) -> tuple[list[str], np.ndarray]:
        columns = {name: [getattr(r, name) for r in rows] for name, _ in self.kinds}
        labels, probabilities = self.session.run(None, self.feeds(columns, self.kinds))
        return [str(label) for label in labels], probabilities

    def predict_columns(self, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        labels, probabilities = self.session.run(None, self.feeds(columns, self.kinds))
        return np.asarray(labels).ravel(), probabilities


class SklearnPredictor:
    """The logged sklearn pipeline itself: the fallback when there is no verified twin."""

    backend = "sklearn"

    def __init__(self, pipeline: Any, threads: int | None = None) -> None:
        if threads is not None:  # a file's millions of rows: every core (a request: as trained)
            pipeline.set_params(**{key: threads for key in pipeline.get_params()
                                   if key.endswith("n_jobs")})
        self.pipeline = pipeline
        self.columns = list(pipeline.feature_names_in_)
        self.classes = [str(c) for c in pipeline.classes_]

    def predict(self, rows: Sequence[Any]) -> tuple[list[str], np.ndarray]:
        import pandas as pd

        frame = pd.DataFrame({c: [getattr(r, c) for r in rows] for c in self.columns})
        probabilities = self.pipeline.predict_proba(frame)
        return [self.classes[i] for i in probabilities.argmax(axis=1)], probabilities

    def predict_columns(self, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        import pandas as pd

        frame = columns if isinstance(columns, pd.DataFrame) else pd.DataFrame(columns)
        probabilities = self.pipeline.predict_proba(frame[self.columns])
        return np.asarray(self.classes, dtype=object)[probabilities.argmax(axis=1)], probabilities


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    alias: str
    run_id: str
    tags: dict[str, str]
    predictor: Predictor
    integrity: Integrity  # how far its files are vouched for: signed | unsigned | unbound
    card: str | None = None  # the version's model card (markdown), GET /model/card
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


def load(version: ModelVersion, alias: str, cfg: LoadOptions, threads: int = 1) -> ServedModel:
    """Load one registered version for serving: its verified ONNX twin, else its sklearn pipeline.

    Every file comes from the version's own artifacts and must be the one its manifest binds
    (obesity.registry.manifest: signed and checked with registry.verify_key when set); the skops
    file, when it is loaded, must also pass obesity.model.files (reviewed types only). A file
    that differs is ModelRefused; one that cannot be read is a RegistryError, tried again at the
    next poll.
    `threads`: ONNX Runtime's threads (1 for requests of a few rows; more for a file)."""
    label = f"{version.name} version {version.version}"
    integrity = manifest.check(version, cfg.registry)
    with tempfile.TemporaryDirectory(prefix="obesity-serve-") as tmp:
        folder = Path(tmp)
        skops_path = model_files.skops_file(
            model_files.download(version.name, version.version, folder / "model"), label)
        # the digest binds the file to what registration checked; its types are audited only
        # when it is loaded (a verified twin serves without it)
        manifest.expect(integrity, manifest.MODEL, skops_path, label)
        card = _card(version, integrity, folder, label)
        predictor: Predictor | None = None
        if cfg.use_onnx and manifest.ONNX in integrity.files:
            predictor = _bound_twin(version, integrity, folder, label, threads)
        if predictor is None:
            pipeline = model_files.load_file(skops_path, label)
            if cfg.use_onnx and cfg.export_onnx and manifest.ONNX not in integrity.files:
                predictor = _twin_made_now(version, pipeline, cfg.registry, label, threads)
            predictor = predictor or SklearnPredictor(pipeline, threads if threads > 1 else None)
    return ServedModel(version.name, str(version.version), alias, version.run_id,
                       dict(version.tags), predictor, integrity, card=card)


def _card(version: ModelVersion, integrity: Integrity, folder: Path, label: str) -> str | None:
    """The model card the manifest binds (markdown); None when there is none or it cannot be
    read. A card that is not the bound one refuses the version (ModelRefused)."""
    from obesity.registry import card

    bound = integrity.files.get(manifest.CARD)
    if bound is None:
        if integrity.status != "unbound" or version.tags.get(card.TAG, "failed") == "failed":
            return None
        bound = {"path": version.tags[card.TAG]}  # an old version: its tag, checked as a path
    try:
        path = model_files.run_file(version.run_id, bound["path"], folder / "card", f"{label}'s card")
    except ObesityError as exc:  # unreadable, or a tag naming a path outside the artifacts
        log.warning("%s: its model card cannot be read: %s", label, first_line(exc))
        return None
    manifest.expect(integrity, manifest.CARD, path, label)
    return path.read_text(encoding="utf-8", errors="replace")


def _bound_twin(version: ModelVersion, integrity: Integrity, folder: Path, label: str,
                threads: int) -> OnnxPredictor | None:
    """The twin the manifest binds; None (and one warning) when its file cannot be read: the
    version's sklearn pipeline serves instead. A different file refuses the version."""
    try:
        path = model_files.run_file(version.run_id, integrity.files[manifest.ONNX]["path"],
                                    folder / "onnx", label)
    except RegistryError as exc:  # gone, or the store is down: the pipeline still answers
        log.warning("%s: its ONNX twin cannot be loaded (%s): serving its sklearn pipeline", label,
                    first_line(exc))
        return None
    manifest.expect(integrity, manifest.ONNX, path, label)
    return OnnxPredictor(path.read_bytes(), threads)


def _twin_made_now(version: ModelVersion, pipeline: Any, registry_cfg: RegistryConfig,
                   label: str, threads: int) -> OnnxPredictor | None:
    """A version with no bound twin gets one in memory, converted from its checked pipeline and
    verified on its test split (nothing is written to the registry); None when it cannot be."""
    from obesity.model import onnx_twin
    from obesity.registry import policy

    try:
        split = policy.test_split_of(version)
        X = split.X_test[list(pipeline.feature_names_in_)]
        model_bytes = onnx_twin.convert(pipeline, list(X.columns), registry_cfg.onnx_opset)
        result = onnx_twin.verify(pipeline, model_bytes, X, registry_cfg.onnx_tolerance)
    except (ObesityError, OSError, ValueError, RuntimeError) as exc:
        log.warning("%s has no ONNX twin and none can be made here (%s): serving its sklearn "
                    "pipeline", label, first_line(exc))
        return None
    if not result.ok:
        log.warning("%s: the ONNX twin made now differs from its pipeline (max |dp| %.2g): "
                    "serving its sklearn pipeline", label, result.max_probability_diff)
        return None
    log.info("%s: ONNX twin made at load, verified on %d test rows", label, result.rows)
    return OnnxPredictor(model_bytes, threads)

