"""The model a service serves: resolved from a registry alias, loaded fast, swapped atomically.

`ModelHolder.refresh()` asks the registry which version the alias names; when it moved, the new
version is loaded completely (ONNX twin if verified, else the sklearn pipeline) and only then put
in place with one reference assignment. A request takes the reference once, so requests in flight
finish on the model they started with, and no request ever sees a half-loaded model.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
from omegaconf import DictConfig

from obesity import onnx_twin

log = logging.getLogger("obesity.serve")


class Predictor(Protocol):
    backend: str

    def predict(self, rows: Sequence[Any]) -> tuple[list[str], np.ndarray]:
        """Labels and class probabilities (columns in `classes` order) for objects with the
        raw feature columns as attributes."""
        ...


class OnnxPredictor:
    """ONNX Runtime on the verified twin: no pandas, no sklearn on the request path."""

    backend = "onnx"

    def __init__(self, model_bytes: bytes) -> None:
        self.session = onnx_twin.session(model_bytes)
        self.classes = onnx_twin.classes(self.session)
        self.kinds = onnx_twin.input_kinds(self.session)

    def predict(self, rows: Sequence[Any]) -> tuple[list[str], np.ndarray]:
        columns = {name: [getattr(r, name) for r in rows] for name, _ in self.kinds}
        # the feeding code the twin was verified with
        labels, probabilities = self.session.run(None, onnx_twin.feeds(columns, self.kinds))
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
    loaded_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


def load(version: Any, alias: str, cfg: DictConfig) -> ServedModel:
    """Load one registered version for serving (making its ONNX twin first if it has none)."""
    import mlflow

    uri = f"models:/{version.name}/{version.version}"
    pipeline = None
    if cfg.use_onnx and "onnx" not in version.tags and cfg.export_onnx:
        pipeline = mlflow.sklearn.load_model(uri)
        version = _attach_twin(version, pipeline)
    if cfg.use_onnx and version.tags.get("onnx") == "verified":
        path = mlflow.artifacts.download_artifacts(run_id=version.run_id,
                                                   artifact_path=onnx_twin.ARTIFACT)
        predictor: Predictor = OnnxPredictor(Path(path).read_bytes())
    else:
        predictor = SklearnPredictor(pipeline or mlflow.sklearn.load_model(uri))
    return ServedModel(version.name, str(version.version), alias, version.run_id,
                       dict(version.tags), predictor)


def _attach_twin(version: Any, pipeline: Any) -> Any:
    """A version registered without a twin gets one now, if its test split can be read here."""
    from mlflow.tracking import MlflowClient

    from obesity import promotion
    from obesity.errors import ObesityError

    try:
        split = promotion.test_split_of(version)
    except (ObesityError, OSError) as exc:  # e.g. the training data is not on this host
        log.warning("%s version %s has no ONNX twin and its test split cannot be read here "
                    "(%s): serving the sklearn pipeline", version.name, version.version, exc)
        return version
    client = MlflowClient()
    onnx_twin.attach(client, pipeline, version, split.X_test[list(pipeline.feature_names_in_)])
    return client.get_model_version(version.name, version.version)


class ModelHolder:
    """The current model of a service and how it follows the registry alias."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.current: ServedModel | None = None
        self._refreshing = threading.Lock()

    def refresh(self) -> bool:
        """Load the version the alias names if it is not the one served; True when swapped."""
        from mlflow.tracking import MlflowClient

        from obesity import promotion

        with self._refreshing:  # one load at a time, however often the poller fires
            version = promotion.alias_version(MlflowClient(), self.cfg.model_name, self.cfg.alias)
            if version is None:
                if self.current is not None:
                    log.warning("alias %s of %s is gone: still serving version %s",
                                self.cfg.alias, self.cfg.model_name, self.current.version)
                return False
            if self.current is not None and self.current.version == str(version.version):
                return False
            new = load(version, self.cfg.alias, self.cfg)
            old, self.current = self.current, new  # the swap: one reference assignment
            log.info("serving %s version %s (%s@%s) via %s%s", new.name, new.version, new.name,
                     new.alias, new.predictor.backend,
                     f", was version {old.version}" if old else "")
            return True
