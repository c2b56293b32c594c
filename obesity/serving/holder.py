"""The model a service serves: resolved from a registry alias, loaded fast, swapped atomically.

`ModelHolder.refresh()` asks the registry which version the alias names; when it moved, the new
version is loaded completely (ONNX twin if verified, else the sklearn pipeline) and only then put
in place with one reference assignment. A request takes the reference once, so requests in flight
finish on the model they started with, and no request ever sees a half-loaded model.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from obesity.config.schemas import ServeConfig
from obesity.errors import ModelRefused, RegistryError, first_line
from obesity.serving import metrics
from obesity.serving.predictors import ServedModel, load
from obesity.stores import locations

log = logging.getLogger(__name__)


class ModelHolder:
    """The current model of a service and how it follows the registry alias.

    `problem` says why the service has no model (or cannot move to the alias's version): the
    store cannot be read, the version's files are gone, the version is refused. Each problem is
    logged once, when it appears; a refused version is not tried again until the alias moves.
    """

    def __init__(self, cfg: ServeConfig) -> None:
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
                             f"{locations.redact(self.cfg.registry.tracking_uri)}: {first_line(exc)}")
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
                metrics.show_verdicts(self.cfg.model_name, number, version.tags)  # fresh tags
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
                self._report(f"cannot load {label}: {type(exc).__name__}: {first_line(exc)}")
                return False
            old, self.current = self.current, new  # the swap: one reference assignment
            self._clear()
            if old is not None:
                with contextlib.suppress(KeyError):
                    metrics.SERVED.remove(old.name, old.alias, old.version, old.predictor.backend)
            metrics.SERVED.labels(new.name, new.alias, new.version, new.predictor.backend).set(1)
            metrics.show_verdicts(new.name, new.version, version.tags)
            log.info("serving %s version %s (%s@%s) via %s%s", new.name, new.version, new.name,
                     new.alias, new.predictor.backend,
                     f", was version {old.version}" if old else "")
            return True

    def _alias_version(self) -> Any:
        """The version the alias names; None when there is none (or no store yet)."""
        from mlflow.exceptions import MlflowException

        from obesity.stores import tracking

        if not locations.check_sqlite(self.cfg.registry.tracking_uri, "MLflow store", create=False):
            return None  # nothing was ever stored there: no model yet
        try:
            client = tracking.client(self.cfg.registry)  # waits while another process creates it
            return client.get_model_version_by_alias(self.cfg.model_name, self.cfg.alias)
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
