"""What answers a prediction: the ONNX twin of a version when it is verified (fast), else its
sklearn pipeline; both behind one `Predictor` interface, with the version they came from."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from omegaconf import DictConfig

from obesity.model import files as model_files

log = logging.getLogger(__name__)


class Predictor(Protocol):
    backend: str
    classes: list[str]  # the probability columns, in order

    def predict(self, rows: Sequence[Any]) -> tuple[list[str], np.ndarray]:
        """Labels and class probabilities (columns in `classes` order) for objects with the
        raw feature columns as attributes."""
        ...


class OnnxPredictor:
    """ONNX Runtime on the verified twin: no pandas, no sklearn on the request path."""

    backend = "onnx"

    def __init__(self, model_bytes: bytes) -> None:
        from obesity.model import onnx_twin

        self.session = onnx_twin.session(model_bytes)
        self.classes = onnx_twin.classes(self.session)
        self.kinds = onnx_twin.input_kinds(self.session)
        self.feeds = onnx_twin.feeds  # the feeding code the twin was verified with

    def predict(self, rows: Sequence[Any]) -> tuple[list[str], np.ndarray]:
        columns = {name: [getattr(r, name) for r in rows] for name, _ in self.kinds}
        labels, probabilities = self.session.run(None, self.feeds(columns, self.kinds))
        return [str(label) for label in labels], probabilities


class SklearnPredictor:
    """The logged sklearn pipeline itself: the fallback when there is no verified twin."""

    backend = "sklearn"

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.columns = list(pipeline.feature_names_in_)
        self.classes = [str(c) for c in pipeline.classes_]

    def predict(self, rows: Sequence[Any]) -> tuple[list[str], np.ndarray]:
        import pandas as pd

        frame = pd.DataFrame({c: [getattr(r, c) for r in rows] for c in self.columns})
        probabilities = self.pipeline.predict_proba(frame)
        return [self.classes[i] for i in probabilities.argmax(axis=1)], probabilities


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    alias: str
    run_id: str
    tags: dict[str, str]
    predictor: Predictor
    card: str | None = None  # the version's model card (markdown), GET /model/card
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


def load(version: Any, alias: str, cfg: DictConfig) -> ServedModel:
    """Load one registered version for serving: its verified ONNX twin (made now if it has
    none), else its sklearn pipeline. Either way the version's model file must pass
    obesity.model.files (skops with reviewed types only), or it is refused (ModelRefused)."""
    with model_files.checked_file(version.name, version.version) as skops_path:
        pipeline = None
        if cfg.use_onnx and "onnx" not in version.tags and cfg.export_onnx:
            pipeline = model_files.load_file(skops_path)
            version = _attach_twin(version, pipeline, cfg.registry)
        predictor: Predictor | None = None
        if cfg.use_onnx and version.tags.get("onnx") == "verified":
            predictor = _onnx_predictor(version)
        if predictor is None:
            predictor = SklearnPredictor(pipeline or model_files.load_file(skops_path))
    return ServedModel(version.name, str(version.version), alias, version.run_id,
                       dict(version.tags), predictor, card=_card(version))


def _card(version: Any) -> str | None:
    """The version's model card (markdown); None when it has none or it cannot be read."""
    from mlflow.tracking import MlflowClient

    from obesity.registry import card

    if version.tags.get(card.TAG, "failed") == "failed":
        return None
    try:
        return card.read(MlflowClient(), version)
    except Exception as exc:  # the model still serves; /model says it has no card
        log.warning("%s version %s: its model card cannot be read: %s", version.name,
                    version.version, first_line(exc))
        return None


def _onnx_predictor(version: Any) -> OnnxPredictor | None:
    """The twin's predictor; None (and one warning) when its file is gone or unreadable: the
    version's sklearn pipeline serves instead."""
    import mlflow

    from obesity.model import onnx_twin

    try:
        with tempfile.TemporaryDirectory(prefix="obesity-onnx-") as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=version.run_id, artifact_path=onnx_twin.ARTIFACT, dst_path=tmp)
            return OnnxPredictor(Path(path).read_bytes())
    except Exception as exc:  # missing artifact, corrupt file: the pipeline still answers
        log.warning("%s version %s: its ONNX twin cannot be loaded (%s): serving its sklearn "
                    "pipeline", version.name, version.version, first_line(exc))
        return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _attach_twin(version: Any, pipeline: Any, registry_cfg: Any) -> Any:
    """A version registered without a twin gets one now, if its test split can be read here."""
    from mlflow.tracking import MlflowClient

    from obesity.errors import ObesityError
    from obesity.model import onnx_twin
    from obesity.registry import policy

    try:
        split = policy.test_split_of(version)
    except (ObesityError, OSError) as exc:  # e.g. the training data is not on this host
        log.warning("%s version %s has no ONNX twin and its test split cannot be read here "
                    "(%s): serving the sklearn pipeline", version.name, version.version, exc)
        return version
    client = MlflowClient()
    onnx_twin.attach(client, pipeline, version, split.X_test[list(pipeline.feature_names_in_)],
                     registry_cfg)
    return client.get_model_version(version.name, version.version)


