"""Checks of values the structured schemas can only type: ranges and references.

`python -m obesity.train model.max_depth=abc` fails in the schema; `data.test_size=1.5` is a
valid float and used to end in a scikit-learn traceback after a run was opened. These checks run
right after composing, before any store or folder is touched: through the `ConfigCheck` Hydra
callback (before Hydra creates the run dir) and again at the top of every training run (the
Python API, DVC stages and each sweep trial with its sampled values).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from obesity.config.schemas import (
    MODEL_SCHEMAS,
    MonitorConfig,
    MonitorJobConfig,
    PredictConfig,
    RegistryConfig,
    ServeConfig,
    TrainConfig,
)
from obesity.data.contract import CLASSES, FEATURE_NAMES, TARGET
from obesity.errors import ConfigError, exit_on_error

MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's random_state range
# What a sweeper may optimise: cross-validation on the train split only, never the test split.
OBJECTIVES = ("cv_f1_macro_mean", "cv_accuracy_mean")
# What the guard can bootstrap from two models' predictions (test_<kind>)
GUARDED_KINDS = ("accuracy", "f1_macro",
                 *(f"{m}_{c}" for m in ("precision", "recall", "f1") for c in CLASSES))


def guarded(metric: str) -> bool:
    """Can the guard compare two models on `metric` (e.g. test_f1_macro)?"""
    prefix, _, kind = metric.partition("_")
    return prefix == "test" and kind in GUARDED_KINDS


def registry_problems(reg: RegistryConfig) -> list[str]:
    """The promotion rules' values, each naming its key."""
    problems: list[str] = []
    if not guarded(reg.promotion_metric):
        problems.append(f"registry.promotion_metric={reg.promotion_metric}: the guard compares "
                        "two models' predictions on test_accuracy, test_f1_macro or a per-class "
                        "test_{precision,recall,f1}_<class>")
    if not 0 < reg.alpha < 1:
        problems.append(f"registry.alpha={reg.alpha}: must be between 0 and 1")
    if reg.tolerance < 0:
        problems.append(f"registry.tolerance={reg.tolerance}: must be 0 or more")
    if reg.bootstrap_samples < 100:
        problems.append(f"registry.bootstrap_samples={reg.bootstrap_samples}: at least 100")
    _seed(problems, "registry.bootstrap_seed", reg.bootstrap_seed)
    if reg.min_test_rows < 1 or reg.min_test_rows_per_class < 1:
        problems.append(f"registry.min_test_rows={reg.min_test_rows}, registry.min_test_rows_"
                        f"per_class={reg.min_test_rows_per_class}: each must be 1 or more")
    for key, kind in (("signing_key", "PRIVATE KEY"), ("verify_key", "PUBLIC KEY")):
        if not getattr(reg, key):
            continue
        try:
            head = Path(str(getattr(reg, key))).read_bytes()[:64]
        except OSError as exc:
            problems.append(f"registry.{key}={getattr(reg, key)}: cannot be read ({exc.strerror or exc}; "
                            "python -m obesity.registry keygen DIR makes a key pair)")
            continue
        if f"-----BEGIN {kind}-----".encode() not in head:
            problems.append(f"registry.{key}={getattr(reg, key)}: not a PEM {kind.lower()} (python -m "
                            "obesity.registry keygen DIR makes a key pair)")
    if not 0 < reg.onnx_tolerance < 1:
        problems.append(f"registry.onnx_tolerance={reg.onnx_tolerance}: must be between 0 and 1")
    return problems


def _seed(problems: list[str], key: str, value: Any) -> None:
    if not 0 <= value <= MAX_SEED:
        problems.append(f"{key}={value}: a seed must be between 0 and {MAX_SEED}")


def _outputs(problems: list[str], outputs: str) -> None:
    try:
        Path(outputs).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        problems.append(f"paths.outputs={outputs}: the folder cannot be created "
                        f"({exc.strerror or exc})")


def train_problems(cfg: TrainConfig) -> list[str]:
    """Every out-of-range or dangling value of a training config, each naming its key."""
    problems: list[str] = []
    data = cfg.data
    if cfg.objective not in OBJECTIVES:
        problems.append(f"objective={cfg.objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if not 0 < data.test_size < 1:
        problems.append(f"data.test_size={data.test_size}: the share of rows held out for the "
                        "test split must be between 0 and 1 (exclusive)")
    if cfg.cv_folds < 2:
        problems.append(f"cv_folds={cfg.cv_folds}: cross-validation needs at least 2 folds")
    if not 0 <= data.extra_holdout < 1:
        problems.append(f"data.extra_holdout={data.extra_holdout}: the share of the extra files' "
                        "rows held out as fresh rows must be in [0, 1)")
    _seed(problems, "data.extra_seed", data.extra_seed)
    _seed(problems, "data.split_seed", data.split_seed)
    _seed(problems, "seed", cfg.seed)
    if cfg.threads is not None and cfg.threads < 1:
        problems.append(f"threads={cfg.threads}: native threads per run, 1 or more (or null: "
                        "the cores divided by the launcher's workers)")
    if cfg.n_jobs == 0:
        problems.append("n_jobs=0: use a number of processes (1, 2, ...) or -1 for all cores")
    for name in data.exclude:
        if name == TARGET:
            problems.append(f"data.exclude=[{name}]: {name} is the label, not a feature")
        elif name not in FEATURE_NAMES:
            problems.append(f"data.exclude=[{name}]: no such feature; features: "
                            f"{', '.join(FEATURE_NAMES)}")
    schema = MODEL_SCHEMAS.get(cfg.model.name)
    # `+model.key=...` adds a key the estimator does not take (to the composed config: its
    # dataclass has no place for it and would drop it without a word)
    if schema is not None and isinstance(cfg.model, DictConfig):
        known = [f.name for f in dataclasses.fields(schema)]
        problems += [f"model.{key!s}: no such key of model={cfg.model.name}; its keys: "
                     f"{', '.join(k for k in known if not k.startswith('_'))}"
                     for key in cfg.model if key not in known]
    if set(FEATURE_NAMES) <= set(data.exclude):
        problems.append("data.exclude removes every feature")
    _outputs(problems, cfg.paths.outputs)
    return problems + registry_problems(cfg.registry)


def serve_problems(cfg: ServeConfig) -> list[str]:
    problems: list[str] = []
    if not 0 <= cfg.port <= 65535:
        problems.append(f"port={cfg.port}: must be between 0 and 65535")
    for key in ("reload_interval_s", "header_timeout_s", "keep_alive_timeout_s"):
        if not getattr(cfg, key) > 0:
            problems.append(f"{key}={getattr(cfg, key)}: must be positive")
    if cfg.load_wait_s < 0:
        problems.append(f"load_wait_s={cfg.load_wait_s}: must be 0 or more")
    for key in ("limit_concurrency", "batch_limit", "body_limit_bytes", "label_batch_limit"):
        if getattr(cfg, key) < 1:
            problems.append(f"{key}={getattr(cfg, key)}: must be 1 or more")
    problems += recording_problems(cfg.monitor)
    return problems + registry_problems(cfg.registry)


def recording_problems(monitor: MonitorConfig) -> list[str]:
    """The service's side of `monitor`: its prediction log."""
    problems: list[str] = []
    if not monitor.flush_interval_s > 0:
        problems.append(f"monitor.flush_interval_s={monitor.flush_interval_s}: must be positive")
    if monitor.buffer_rows < 1:
        problems.append(f"monitor.buffer_rows={monitor.buffer_rows}: must be 1 or more")
    if monitor.retention_days is not None and not monitor.retention_days > 0:
        problems.append(f"monitor.retention_days={monitor.retention_days}: must be positive (or null)")
    return problems


def monitor_problems(cfg: MonitorJobConfig) -> list[str]:
    """The drift report's side of `monitor` (python -m obesity.monitor)."""
    from obesity.compat import evidently_stattests

    m = cfg.monitor
    problems: list[str] = []
    if m.min_rows < 1:
        problems.append(f"monitor.min_rows={m.min_rows}: must be 1 or more")
    if m.window < m.min_rows:
        problems.append(f"monitor.window={m.window}: must be at least monitor.min_rows={m.min_rows}")
    if m.since_hours is not None and not m.since_hours > 0:
        problems.append(f"monitor.since_hours={m.since_hours}: must be positive (or null)")
    for key, numeric, words in (("num_method", True, "numeric"), ("cat_method", False, "categorical")):
        if evidently_stattests.stattest(getattr(m, key), numeric) is None:
            problems.append(f"monitor.{key}={getattr(m, key)}: not an Evidently drift test for {words} "
                            "columns (e.g. wasserstein, ks, psi, jensenshannon, chisquare)")
    for key in ("num_threshold", "cat_threshold", "prediction_threshold"):
        if not getattr(m, key) > 0:
            problems.append(f"monitor.{key}={getattr(m, key)}: must be positive")
    if not 0 < m.drift_share <= 1:
        problems.append(f"monitor.drift_share={m.drift_share}: must be in (0, 1]")
    if m.min_labels < 1:
        problems.append(f"monitor.min_labels={m.min_labels}: must be 1 or more")
    if m.label_window < m.min_labels:
        problems.append(f"monitor.label_window={m.label_window}: must be at least "
                        f"monitor.min_labels={m.min_labels}")
    if not 0 <= m.margin < 1:
        problems.append(f"monitor.margin={m.margin}: must be in [0, 1)")
    if cfg.version is not None and not str(cfg.version).isdigit():
        problems.append(f"version={cfg.version}: a registered version number (or null: the alias)")
    _outputs(problems, cfg.paths.outputs)
    return problems


def predict_problems(cfg: PredictConfig) -> list[str]:
    problems: list[str] = []
    if cfg.chunk_rows < 1:
        problems.append(f"chunk_rows={cfg.chunk_rows}: must be 1 or more")
    if cfg.version is not None and not str(cfg.version).isdigit():
        problems.append(f"version={cfg.version}: a registered version number (or null: the alias)")
    return problems + registry_problems(cfg.registry)


def check(cfg: DictConfig | TrainConfig | ServeConfig | MonitorJobConfig | PredictConfig) -> None:
    """ConfigError listing every problem of a train, serve, monitor or predict config (as
    composed, or as its dataclass)."""
    kind = OmegaConf.get_type(cfg) if isinstance(cfg, DictConfig) else type(cfg)
    if kind is not None and issubclass(kind, TrainConfig):
        problems = train_problems(cfg)  # type: ignore[arg-type]  # a DictConfig of one
    elif kind is not None and issubclass(kind, ServeConfig):
        problems = serve_problems(cfg)  # type: ignore[arg-type]
    elif kind is not None and issubclass(kind, PredictConfig):
        problems = predict_problems(cfg)  # type: ignore[arg-type]
    else:
        problems = monitor_problems(cfg)  # type: ignore[arg-type]
    if problems:
        raise ConfigError("; ".join(problems))


class ConfigCheck(Callback):
    """Hydra callback: check the composed config before Hydra makes a run or sweep dir, and
    stop with one line (exit 1) if it is wrong."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    @staticmethod
    def _check(config: DictConfig) -> None:
        with exit_on_error():  # `error: ...`, exit 1, as every other mistake
            check(config)
