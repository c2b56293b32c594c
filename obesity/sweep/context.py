"""What a job knows about the sweep it belongs to: the parent MLflow run (a file in the sweep
dir, written by the SweepTracking callback) and the study's name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

PARENT_FILE = "mlflow_parent_run_id"


@dataclass(frozen=True)
class SweepContext:
    """What a job knows about the sweep it belongs to (nothing for a single run)."""

    parent_run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def current() -> SweepContext:
    """The sweep context of the running Hydra job."""
    if not HydraConfig.initialized():
        return SweepContext()
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return SweepContext()
    parent_file = Path(hc.sweep.dir) / PARENT_FILE
    parent = parent_file.read_text().strip() if parent_file.is_file() else None
    tags = {"sweep_run_id": parent} if parent else {}
    study = hc.sweeper.get("study_name")
    if study:
        tags["study"] = str(study)
    return SweepContext(parent, tags)
