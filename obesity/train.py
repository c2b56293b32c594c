"""`python -m obesity.train`: one training run, or one trial of a sweep (`-m`).

Thin on purpose: composing a config (`--help`, `--cfg job`, a misspelt override, an unknown
option) imports Hydra and the schemas only; mlflow and scikit-learn are imported when a run
starts (obesity.training.job). Returns the configured objective so a Hydra sweeper can optimise it.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

import logging
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig

from obesity import runtime
from obesity.config.compose import CONFIG_DIR, hydra_cli, typed
from obesity.config.schemas import EXECUTION_WHITELIST, TrainConfig
from obesity.errors import exit_on_error
from obesity.sweep import context, pruning
from obesity.sweep.outcome import Pruned

if TYPE_CHECKING:
    from obesity.training.job import TrainResult

log = logging.getLogger(__name__)
_IMPORTS = {"entrypoint": time.perf_counter() - _T_START, "run": 0.0}


def import_seconds() -> float:
    """Seconds this process spent importing the entrypoint and what a run needs."""
    return _IMPORTS["entrypoint"] + _IMPORTS["run"]


def __getattr__(name: str) -> Any:
    """`obesity.train.run` and `obesity.train.TrainResult` (now in obesity.training.job), loaded on
    first use so that importing this module stays light."""
    if name in ("run", "TrainResult"):
        from obesity.training import job as training

        return getattr(training, name)
    raise AttributeError(f"module 'obesity.train' has no attribute {name!r}")


def _task_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def summary(cfg: TrainConfig, result: TrainResult) -> str:
    """What a finished run says: its scores, where the time went, where to look."""
    from obesity.stores import locations

    m, t = result.metrics, result.timings
    scores = [f"{k.removesuffix('_mean')} {m[k]:.4f} ± {m[k.replace('_mean', '_std')]:.4f}"
              for k in ("cv_f1_macro_mean", "cv_accuracy_mean")]
    scores += [f"{k} {m[k]:.4f}" for k in ("test_f1_macro", "test_accuracy") if k in m]
    uri = str(cfg.registry.tracking_uri)
    path = locations.sqlite_path(uri)
    look = (f"mlflow ui --backend-store-uri sqlite:///{path.resolve()}" if path is not None
            else f"open {locations.redact(uri)}")  # absolute: it works from any folder
    return (f"run {result.run_id} ({cfg.model.name} on {cfg.data.name}): {', '.join(scores)}\n"
            f"  time: imports {t['imports']:.1f}s, data {t['data']:.1f}s, store {t['store']:.1f}s, "
            f"fit+cv {t['fit_cv']:.1f}s, logging {t['logging']:.1f}s\n"
            f"  look: {look} (experiment {cfg.registry.experiment})")


# The whitelist covers instantiate() and the logging config (handler factories).
@hydra.main(config_path=str(CONFIG_DIR), config_name="train", execution_whitelist=EXECUTION_WHITELIST)
def main(cfg: DictConfig) -> float | Pruned:
    """Hydra entrypoint: one run, or one trial of a sweep."""
    tick = time.perf_counter()
    runtime.for_this_process()  # the launcher's own process has one; a joblib worker starts one
    from obesity.training import job as training  # mlflow, sklearn, pandas: only now that a run starts

    _IMPORTS["run"] += time.perf_counter() - tick
    sweep = context.current()
    with exit_on_error(reraise=sweep.parent_run_id is not None):
        train = typed(cfg, TrainConfig)
        result = training.run(train, overrides=_task_overrides(), parent_run_id=sweep.parent_run_id,
                              tags=sweep.tags, on_fold=pruning.fold_reporter(train),
                              imported_s=import_seconds())
    if result.pruned:  # the sweeper tells the study (a pruned trial is not a failed one)
        return Pruned(f"{train.objective} {result.objective:.4f} after {result.folds} "
                      f"of {train.cv_folds} folds")
    # A trial is one line of the sweep's progress; a single run ends with its summary.
    log.log(logging.DEBUG if sweep.parent_run_id else logging.INFO, "%s", summary(train, result))
    return result.objective


if __name__ == "__main__":
    hydra_cli(main)
