"""Retrain on drift or on degradation: a sweep through the same entrypoint (`python -m
obesity.train -m ...`), whose best trial the registry's guard then promotes or not, exactly as
for any sweep (on degradation, with the exported labels as `data.extra`)."""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obesity.config.compose import CONFIG_DIR
from obesity.config.schemas import MonitorJobConfig
from obesity.errors import ConfigError
from obesity.sweep.context import PARENT_FILE

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)
# What a retrain takes over from the monitor's own command line: where the stores and the data
# are (the keys of the `data`, `registry` and `paths` nodes, and those groups' choices)
CARRIED = ("data", "registry", "paths")


def command(cfg: MonitorJobConfig, version: ModelVersion, monitor_run_id: str, sweep_dir: Path,
            extra: Path | None = None) -> list[str]:
    """The `python -m obesity.train -m ...` a check starts (`extra`: a labelled file to learn
    from beside the original data: `data.extra=[extra]`)."""
    overrides = list(cfg.monitor.retrain)
    if extra is not None and "data.extra" not in {_key(o) for o in overrides}:
        overrides.append(f"data.extra=[{extra}]")
    if not overrides:  # the served version's own family
        family = version.tags.get("model", "")
        if not (CONFIG_DIR / "sweep" / f"{family}.yaml").is_file():
            raise ConfigError(f"monitor.retrain is empty and {cfg.model_name} version "
                              f"{version.version} is model={family or '?'}, which has no sweep "
                              "config: set monitor.retrain (e.g. '[sweep=hgb]')")
        overrides = [f"sweep={family}"]
    keys = {_key(o) for o in overrides}
    # A fresh study: the data changed, so the trials of earlier sweeps (same study name, other
    # data) must not count toward this one's n_trials nor its best value.
    if "sweep" in keys and "hydra.sweeper.study_name" not in keys:
        overrides.append(f"hydra.sweeper.study_name=retrain-{version.name}-v{version.version}-"
                         f"{monitor_run_id[:8]}")
    carried = [o for o in _monitor_overrides(cfg)
               if _key(o).split(".")[0] in CARRIED and _key(o) not in keys]
    return [sys.executable, "-m", "obesity.train", "-m", *carried, *overrides,
            f"hydra.sweep.dir={sweep_dir}"]


def _key(override: str) -> str:
    """`+data.path=x` -> `data.path`."""
    return override.lstrip("+~").split("=", 1)[0]


def _monitor_overrides(cfg: MonitorJobConfig) -> list[str]:
    """The monitor's own command-line overrides (Hydra's record of them), or, called from Python,
    its data and registry choices and paths."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return list(HydraConfig.get().overrides.task)
    return [f"data={cfg.data.name}", f"registry={cfg.registry.name}",
            f"paths.root={cfg.paths.root}", f"paths.outputs={cfg.paths.outputs}"]


def _same_data_warning(overrides: list[str], version: ModelVersion) -> None:
    """Compose what the retrain will train (a bad override fails here, in one line) and say so
    when it is the very data the served version was trained on: a new search, not new data."""
    from obesity.config.compose import compose
    from obesity.data.load import file_md5

    try:
        train_cfg = compose([o for o in overrides if not o.startswith("hydra.")])
    except ConfigError as exc:  # named as the retrain's, not the monitor's own config
        raise ConfigError(f"monitor.retrain: {exc}") from None
    path = Path(train_cfg.data.path)
    if train_cfg.data.extra:  # new labelled data beside the original
        return
    if path.is_file() and file_md5(path) == version.tags.get("data_md5"):
        log.warning("the retrain trains on %s, the data version %s was trained on: it can find "
                    "other parameters, not learn the drifted traffic; new labelled data enters "
                    "as docs/monitoring.md says", path, version.version)


def start(cfg: MonitorJobConfig, version: ModelVersion, monitor_run_id: str, out_dir: Path,
          extra: Path | None = None) -> dict[str, Any]:
    """Run the retrain sweep (its output goes to this process's), then read what it did: its
    MLflow parent run and the versions it registered with the guard's decision (or, when it
    failed, `error`). `extra`: the exported labels to learn from too."""
    from mlflow.tracking import MlflowClient

    sweep_dir = out_dir / "retrain"
    cmd = command(cfg, version, monitor_run_id, sweep_dir, extra)
    _same_data_warning(cmd[4:-1], version)
    log.info("%s: retraining: %s", "degraded" if extra else "drift", shlex.join(cmd[1:]))
    code = subprocess.run(cmd, check=False).returncode
    parent = sweep_dir / PARENT_FILE
    sweep_run_id = parent.read_text().strip() if parent.is_file() else None
    found: dict[str, Any] = {"command": shlex.join(["python", *cmd[1:]]), "exit_code": code,
                             "sweep_dir": str(sweep_dir), "sweep_run_id": sweep_run_id}
    if code != 0:  # said in the summary first; the check then exits 1 with it
        found["error"] = (f"the retrain exited {code} (MLflow run {sweep_run_id or 'none'}, "
                          f"sweep dir {sweep_dir}): {found['command']}")
        return found
    client = MlflowClient()
    registered = [v for v in client.search_model_versions(f"name='{cfg.model_name}'")
                  if sweep_run_id and v.tags.get("sweep_run_id") == sweep_run_id]
    found["registered"] = [{"version": str(v.version), "decision": v.tags.get("promotion", "")}
                           for v in registered]
    for v in found["registered"]:
        log.info("retrain registered version %s: %s", v["version"], v["decision"])
    return found
