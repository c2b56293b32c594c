"""The model a service serves: resolved from a registry alias, loaded fast, swapped atomically.

`ModelHolder.refresh()` asks the registry which version the alias names; when it moved, the new
version is loaded completely (ONNX twin if verified, else the sklearn pipeline) and only then put
in place with one reference assignment. A request takes the reference once, so requests in flight
finish on the model they started with, and no request ever sees a half-loaded model.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
from omegaconf import DictConfig

from obesity import model_files, stores
from obesity.errors import ModelRefused, RegistryError

log = logging.getLogger("obesity.serve")


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
        from obesity import onnx_twin

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
    loaded_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


def load(version: Any, alias: str, cfg: DictConfig) -> ServedModel:
    """Load one registered version for serving: its verified ONNX twin (made now if it has
    none), else its sklearn pipeline. Either way the version's model file must pass
    obesity.model_files (skops with reviewed types only), or it is refused (ModelRefused)."""
    with model_files.checked_file(version.name, version.version) as skops_path:
        pipeline = None
        if cfg.use_onnx and "onnx" not in version.tags and cfg.export_onnx:
            pipeline = model_files.load_file(skops_path)
            version = _attach_twin(version, pipeline)
        predictor: Predictor | None = None
        if cfg.use_onnx and version.tags.get("onnx") == "verified":
            predictor = _onnx_predictor(version)
        if predictor is None:
            predictor = SklearnPredictor(pipeline or model_files.load_file(skops_path))
    return ServedModel(version.name, str(version.version), alias, version.run_id,
                       dict(version.tags), predictor)


def _onnx_predictor(version: Any) -> OnnxPredictor | None:
    """The twin's predictor; None (and one warning) when its file is gone or unreadable: the
    version's sklearn pipeline serves instead."""
    import mlflow

    from obesity import onnx_twin

    try:
        with tempfile.TemporaryDirectory(prefix="obesity-onnx-") as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=version.run_id, artifact_path=onnx_twin.ARTIFACT, dst_path=tmp)
            return OnnxPredictor(Path(path).read_bytes())
    except Exception as exc:  # missing artifact, corrupt file: the pipeline still answers
        log.warning("%s version %s: its ONNX twin cannot be loaded (%s): serving its sklearn "
                    "pipeline", version.name, version.version, _first_line(exc))
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _attach_twin(version: Any, pipeline: Any) -> Any:
    """A version registered without a twin gets one now, if its test split can be read here."""
    from mlflow.tracking import MlflowClient

    from obesity import onnx_twin, promotion
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
    """The current model of a service and how it follows the registry alias.

    `problem` says why the service has no model (or cannot move to the alias's version): the
    store cannot be read, the version's files are gone, the version is refused. Each problem is
    logged once, when it appears; a refused version is not tried again until the alias moves.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.current: ServedModel | None = None
        self.problem: str | None = (f"starting: looking up {cfg.model_name}@{cfg.alias} in the "
                                    "registry")
        self._logged: str | None = None  # the last problem logged: each is logged once
        self._refused: str | None = None  # the version the alias names that was refused
        self._refreshing = threading.Lock()

    def refresh(self) -> bool:
        """Load the version the alias names if it is not the one served; True when swapped."""
        with self._refreshing:  # one load at a time, however often the poller fires
            try:
                version = self._alias_version()
            except Exception as exc:  # store unreadable or unreachable: keep what is served
                self._report(f"cannot read the model registry at "
                             f"{stores.redact(self.cfg.registry.tracking_uri)}: {_first_line(exc)}")
                return False
            if version is None:
                if self.current is not None:
                    self._report(f"alias {self.cfg.alias} of {self.cfg.model_name} is gone: "
                                 f"still serving version {self.current.version}", logging.WARNING)
                else:
                    self._clear()
                return False
            number = str(version.version)
            if self.current is not None and self.current.version == number:
                self._clear()
                return False
            if number == self._refused:  # reported when refused; waits for the alias to move
                return False
            self._refused = None
            label = f"{self.cfg.model_name} version {number} ({self.cfg.alias})"
            if self.current is None:
                self.problem = f"loading {label}: not ready yet"
            try:
                new = load(version, self.cfg.alias, self.cfg)
            except ModelRefused as exc:
                self._refused = number
                self._report(f"refused to load {label}: {exc}")
                return False
            except RegistryError as exc:  # e.g. its files are gone: the message says how to repair
                self._report(f"cannot load {label}: {exc}")
                return False
            except Exception as exc:
                self._report(f"cannot load {label}: {type(exc).__name__}: {_first_line(exc)}")
                return False
            old, self.current = self.current, new  # the swap: one reference assignment
            self._clear()
            log.info("serving %s version %s (%s@%s) via %s%s", new.name, new.version, new.name,
                     new.alias, new.predictor.backend,
                     f", was version {old.version}" if old else "")
            return True

    def _alias_version(self) -> Any:
        """The version the alias names; None when there is none (or no store yet)."""
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        from obesity import tracking

        tracking.use_stores(self.cfg.registry)  # idempotent; here, so mlflow loads off the loop
        if not stores.check_sqlite(self.cfg.registry.tracking_uri, "MLflow store", create=False):
            return None  # nothing was ever stored there: no model yet
        try:
            return MlflowClient().get_model_version_by_alias(self.cfg.model_name, self.cfg.alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def _report(self, problem: str, level: int = logging.ERROR) -> None:
        if self.current is not None and level == logging.ERROR:
            problem += f"; still serving version {self.current.version}"
        if problem != self._logged:
            log.log(level, "%s", problem)
        self.problem = self._logged = problem

    def _clear(self) -> None:
        if self._logged is not None and self.current is not None:
            log.info("resolved: serving %s version %s", self.current.name, self.current.version)
        self.problem = self._logged = None
