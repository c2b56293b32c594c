"""Structured configs: the schema every YAML file under configs/ is validated against.

Registered in Hydra's ConfigStore under `schema/...` by `register()` (called by the one composer,
by the Hydra entrypoints and by hydra_plugins/obesity_schemas.py; never on import), and pulled in
by each YAML file's defaults list, so a misspelt key or a wrong type fails at compose time,
naming the key. The schemas live in their own group so that `model=` lists only the real model
configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING, OmegaConf

from obesity.compat import hydra_ray_launcher
from obesity.data.contract import FEATURE_NAMES


class Guard(StrEnum):
    """registry.guard: how the guard reads the paired interval (obesity/registry/evidence.py)."""

    better = "better"  # lower bound > promotion_margin (sweeps: a real improvement, not noise)
    not_worse = "not_worse"  # lower bound > -tolerance (a refit on new data: as good, within it)
    point = "point"  # point estimate > promotion_margin (the old rule: one row can decide it)


class OnSignal(StrEnum):
    """monitor.on_drift, monitor.on_degraded: what a check does when it finds it."""

    report = "report"
    retrain = "retrain"  # run `python -m obesity.train -m <monitor.retrain>`


class ReportWhen(StrEnum):
    """monitor.report: when a check writes Evidently's HTML report."""

    drift = "drift"
    always = "always"
    never = "never"


class OnError(StrEnum):
    """on_error of `python -m obesity.predict`: what a row that breaks the contract does."""

    fail = "fail"  # nothing is written; the error names the first bad rows (line, field)
    skip = "skip"  # the row goes to the rejects file with its problems; the others are scored


class LogLevel(StrEnum):
    """serve's log_level: uvicorn's levels."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"
    trace = "trace"


@dataclass
class PathsConfig:
    root: str = "${oc.env:OBESITY_ROOT,.}"
    outputs: str = "${paths.root}/outputs"


@dataclass
class DataConfig:
    name: str = MISSING
    path: str = "${paths.root}/data/raw/ObesityDataSet_raw_and_data_sinthetic.csv"
    exclude: list[str] = field(default_factory=list)  # feature columns left out of the model
    bmi: bool = True  # add Weight / Height**2 as a feature (needs both columns)
    test_size: float = 0.2
    stratify: bool = True
    # The split has its own seed so that changing `seed` (model randomness, CV folds) keeps the
    # held-out test split, and with it every champion/challenger comparison, the same.
    split_seed: int = 42
    # the promotion threshold (registry.promotion_threshold) belongs to the data: what lifestyle
    # columns alone can reach is less than what Height and Weight give away
    promotion_threshold: float = 0.85
    # Labelled files learnt from beside `path` (e.g. the served traffic's labels: `python -m
    # obesity.feedback export`), each checked against the contract. A seeded share of their
    # rows is held out as FRESH rows: no model trains on them, and the registry's guard decides
    # on them (the rows of a new population, not the test split of the old file).
    extra: list[str] = field(default_factory=list)
    extra_holdout: float = 0.3
    extra_seed: int = 0


@dataclass
class ModelConfig:
    """Framework keys; the rest of a model node is passed to the estimator named by `_target_`."""

    _target_: str = MISSING
    name: str = MISSING
    scale_numeric: bool = False  # standardise numeric columns (linear models need it)


@dataclass
class RandomForestConfig(ModelConfig):
    _target_: str = "sklearn.ensemble.RandomForestClassifier"
    name: str = "rf"
    n_estimators: int = 300
    criterion: str = "gini"
    max_depth: Optional[int] = None
    min_samples_split: int = 2
    min_samples_leaf: int = 1
    max_features: Any = "sqrt"  # "sqrt", "log2", a fraction or null
    bootstrap: bool = True
    max_samples: Optional[float] = None  # fraction of rows per tree; only with bootstrap
    class_weight: Optional[str] = None
    random_state: int = II("seed")
    n_jobs: int = 1


@dataclass
class ExtraTreesConfig(RandomForestConfig):
    _target_: str = "sklearn.ensemble.ExtraTreesClassifier"
    name: str = "et"
    bootstrap: bool = False


@dataclass
class HistGradientBoostingConfig(ModelConfig):
    _target_: str = "sklearn.ensemble.HistGradientBoostingClassifier"
    name: str = "hgb"
    learning_rate: float = 0.1
    max_iter: int = 200
    max_depth: Optional[int] = None
    max_leaf_nodes: Optional[int] = 31
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0
    max_features: float = 1.0
    # Early stopping carves its own validation set out of each fit: off, so CV is the only judge.
    early_stopping: bool = False
    class_weight: Optional[str] = None
    random_state: int = II("seed")


@dataclass
class LogisticRegressionConfig(ModelConfig):
    _target_: str = "sklearn.linear_model.LogisticRegression"
    name: str = "lr"
    scale_numeric: bool = True
    C: float = 1.0
    l1_ratio: float = 0.0  # 0 = L2, 1 = L1 (saga solver)
    solver: str = "lbfgs"
    max_iter: int = 5000
    class_weight: Optional[str] = None
    random_state: int = II("seed")


@dataclass
class BMIRuleConfig(ModelConfig):
    """The baseline: the BMI thresholds the labels were defined by (obesity/model/baseline.py)."""

    _target_: str = "obesity.model.baseline.BMIRule"
    name: str = "bmi_rule"
    thresholds: list[float] = field(default_factory=lambda: [18.5, 25.0, 27.0, 30.0, 35.0, 40.0])


@dataclass
class RegistryConfig:
    name: str = MISSING
    tracking_uri: str = MISSING
    registry_uri: Optional[str] = None  # None: same as tracking_uri
    artifact_root: Optional[str] = None  # None: the tracking server decides
    experiment: str = "obesity"
    # One registered model per data config: each takes other input columns and is scored on
    # other features, so a lifestyle model must never be compared with (or replace) a full one.
    model_name: str = "obesity_${data.name}"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    promotion_metric: str = "test_f1_macro"
    promotion_threshold: float = II("data.promotion_threshold")  # below: never champion
    # The guard (obesity/registry/evidence.py): champion and candidate on the same test rows,
    # paired bootstrap interval of candidate - champion in the promotion metric, read as `guard`.
    guard: Guard = Guard.better
    promotion_margin: float = 0.0
    tolerance: float = 0.01
    alpha: float = 0.05  # the interval is (1 - alpha), two-sided
    bootstrap_samples: int = 2000
    bootstrap_seed: int = 0  # the same comparison gives the same decision
    # Evidence too small to decide on: fewer test rows, or fewer of any class present, and the
    # guard says "not enough evidence" (a champion from a 3-row split would be chance)
    min_test_rows: int = 100
    min_test_rows_per_class: int = 10
    # Metrics every registered version carries as tags (`registry versions` lists them); the
    # promotion metric is always tagged too, whatever it is.
    tagged_metrics: list[str] = field(default_factory=lambda: [
        "test_f1_macro", "test_accuracy", "cv_f1_macro_mean", "cv_accuracy_mean"])
    # Export each registered version to ONNX, verified on its test split, for the fast service.
    onnx_twin: bool = True
    onnx_opset: int = 17  # the twin's ONNX opset (onnxruntime here runs up to 23)
    onnx_tolerance: float = 1e-5  # largest |p_onnx - p_sklearn| on the test split of a verified twin
    # The manifest of each version's files (obesity/registry/manifest.py): signed with this
    # Ed25519 private key (PEM) by the process that registers; services and promotion verify it
    # with the public key and refuse what does not verify. Unset: manifests are unsigned.
    signing_key: Optional[str] = "${oc.env:OBESITY_SIGNING_KEY,null}"
    verify_key: Optional[str] = "${oc.env:OBESITY_VERIFY_KEY,null}"
    study_storage: Optional[str] = None  # Optuna storage URL of sweeps (never MLflow's file)
    # Where the service records every answered prediction (its own database; None: not at all)
    prediction_log: Optional[str] = None


@dataclass
class TrainConfig:
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    registry: RegistryConfig = MISSING
    seed: int = 42  # estimator randomness and CV folds
    cv_folds: int = 5
    n_jobs: int = 2  # CV folds fitted in parallel
    # native threads (OpenMP, BLAS) of a run's in-process fits; None: the cores divided by the
    # launcher's workers. Set 1 when several sweep processes share a machine (two workers).
    threads: Optional[int] = None
    objective: str = "cv_f1_macro_mean"  # the metric returned to a sweeper
    log_model: bool = True  # single runs log the fitted pipeline; sweep trials do not
    # confusion matrices, precision-recall curves, reliability plot (sweep trials skip them: time)
    log_figures: bool = True
    # permutation importance on the test split: seconds of predictions, so off for a plain run;
    # a registered version always has it (its model card)
    log_importance: bool = False
    evaluate_test: bool = True  # single runs also score the held-out test split (test_*)
    run_name: Optional[str] = None
    promote: bool = True  # -m runs: refit, register and (guarded) promote the best at the end
    trial: Optional[int] = None  # set by the sweeper: the Optuna trial number of this run


# The model configs and the estimators they may instantiate: nothing else is ever executed
# from a config (Hydra 1.4 execution whitelist).
MODEL_SCHEMAS: dict[str, type[ModelConfig]] = {
    "rf": RandomForestConfig,
    "et": ExtraTreesConfig,
    "hgb": HistGradientBoostingConfig,
    "lr": LogisticRegressionConfig,
    "bmi_rule": BMIRuleConfig,
}
ESTIMATOR_TARGETS: list[str] = [schema._target_ for schema in MODEL_SCHEMAS.values()]
# Everything a config may name for Hydra to import and run: estimators, our callback and search
# spaces, Optuna's samplers. Active around the CLI (hydra.utils.execution_whitelist).
EXECUTION_WHITELIST: list[str] = [
    *ESTIMATOR_TARGETS,
    "obesity.sweep.callback.SweepTracking",
    "obesity.config.checks.ConfigCheck",
    "obesity.sweep.search_spaces.*",
    "optuna.samplers.*",
    "optuna.pruners.*",
    "hydra_plugins.hydra_optuna_sweeper.*",
]


@dataclass
class MonitorConfig:
    """configs/monitor/: what the service records of its traffic (obesity/serving/
    prediction_log.py) and how `python -m obesity.monitor` judges it (obesity/monitoring/)."""

    # The service
    log_inputs: bool = True  # the 16 input values too (health data: false keeps answers only)
    flush_interval_s: float = 1.0  # what kill -9 can lose at most; a clean shutdown loses nothing
    buffer_rows: int = 100_000  # rows waiting to be written; beyond, rows are dropped and counted
    retention_days: Optional[float] = None  # rows older than this are deleted at start-up
    metrics: bool = True  # GET /metrics (Prometheus): requests, latency, predictions by class
    # The drift report: the window of logged rows (with inputs) it compares with the reference
    window: int = 1000  # the last N rows
    since_hours: Optional[float] = None  # and only rows of the last H hours
    min_rows: int = 200  # fewer rows in the window: "insufficient data", no verdict (exit 4)
    # Evidently's per-column drift tests (any of its stattest names) and thresholds. Distances,
    # not p-values: with ~1700 reference rows a p-value test flags differences too small to
    # matter and any rare category; the thresholds keep false alarms on 300-row windows of
    # undrifted data well under 5% (scripts/bench_drift.py measures it).
    num_method: str = "wasserstein"  # normed Wasserstein distance (numeric columns)
    num_threshold: float = 0.3
    cat_method: str = "jensenshannon"  # Jensen-Shannon distance (categorical columns)
    cat_threshold: float = 0.15
    prediction_threshold: float = 0.15  # Jensen-Shannon distance of the predicted classes
    # Dataset drift: the share of input columns drifted reaches this (0.05: any one of 16)
    drift_share: float = 0.05
    on_drift: OnSignal = OnSignal.report
    # When a check writes Evidently's HTML report (megabytes: its JavaScript is inline, twice with
    # the MLflow copy): drift | always | never. snapshot.json (much smaller), from which Evidently
    # renders the same report, is written by every check that reaches a verdict.
    report: ReportWhen = ReportWhen.drift
    retrain: list[str] = field(default_factory=list)  # its overrides, e.g. [sweep=hgb]
    experiment: str = "${registry.experiment}-monitoring"  # the MLflow experiment of reports
    # Realized performance (obesity/monitoring/performance.py): the labels that came back
    label_window: int = 100_000  # the last N labelled rows of the model (and of since_hours)
    min_labels: int = 100  # fewer labelled rows of a version: "insufficient", no verdict
    # degraded: the interval's upper bound (accuracy or macro-F1) under the test-split estimate
    # minus this margin
    margin: float = 0.02
    on_degraded: OnSignal = OnSignal.report  # retrain: on the original data plus the labels
    # where the labelled rows are written for a retrain and `python -m obesity.feedback export`
    labels_export: str = "${paths.root}/data/feedback/${model_name}.csv"


@dataclass
class AuthConfig:
    """Who may write labels (POST /feedback) and, when `predictions`, ask for predictions:
    where the bearer tokens are, never the tokens themselves (obesity/serving/auth.py)."""

    tokens_env: Optional[str] = "OBESITY_API_TOKENS"  # an env var: tokens, comma-separated
    tokens_file: Optional[str] = None  # a file: one token a line (a mounted secret)
    predictions: bool = False  # the /predict routes need a token too


@dataclass
class ServeConfig:
    """configs/serve.yaml: what `python -m obesity.serve` serves and how."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = MISSING  # which data config's model (and test split, to verify an ONNX twin)
    registry: RegistryConfig = MISSING
    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = II("registry.model_name")
    alias: str = II("registry.champion_alias")
    reload_interval_s: float = 10.0  # how often the alias is checked for a new version
    load_wait_s: float = 0.0  # wait this long for the first model before listening (0: listen at once)
    batch_limit: int = 1000  # rows in one /predict/batch request
    label_batch_limit: int = 10_000  # labels in one /feedback/batch or /feedback/csv request
    auth: AuthConfig = field(default_factory=AuthConfig)
    body_limit_bytes: int = 2_000_000  # ~1000 rows of JSON, with room
    use_onnx: bool = True  # serve the verified ONNX twin when the version has one
    export_onnx: bool = True  # make the twin at first load when a version has none
    # Bounds on clients (uvicorn, and obesity.serving.http_limits for what uvicorn lacks):
    header_timeout_s: float = 10.0  # a request head must arrive whole within this (slowloris)
    keep_alive_timeout_s: int = 5  # an idle keep-alive connection is closed after this
    limit_concurrency: int = 1000  # connections + requests in flight; beyond: 503 at once
    log_level: LogLevel = LogLevel.info
    access_log: bool = False  # one log line per request costs a fifth of a fast request
    monitor: MonitorConfig = field(default_factory=MonitorConfig)


@dataclass
class MonitorJobConfig:
    """configs/monitor.yaml: which version `python -m obesity.monitor` checks, on what traffic."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = MISSING  # which data config's model
    registry: RegistryConfig = MISSING  # the stores: MLflow (model, reports) and the prediction log
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    model_name: str = II("registry.model_name")
    alias: str = II("registry.champion_alias")
    version: Optional[str] = None  # a version number instead of the alias


@dataclass
class PredictConfig:
    """configs/predict.yaml: which version `python -m obesity.predict` scores a file with, and how."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = MISSING  # which data config's model
    registry: RegistryConfig = MISSING
    model_name: str = II("registry.model_name")
    alias: str = II("registry.champion_alias")
    version: Optional[str] = None  # a version number instead of the alias
    on_error: OnError = OnError.fail
    rejects: Optional[str] = None  # on_error=skip: where bad rows go (default: beside the output)
    chunk_rows: int = 100_000  # rows read, checked and scored at a time: memory stays flat
    use_onnx: bool = True  # the verified twin, on every core (else the sklearn pipeline)
    export_onnx: bool = True  # a version with no twin gets one made in memory and verified


def register() -> None:
    """Put the schemas in Hydra's ConfigStore and the project's resolvers in OmegaConf (once:
    a store that has them is left alone)."""
    if not OmegaConf.has_resolver("obesity.ray_task_env"):
        OmegaConf.register_resolver("obesity.ray_task_env", hydra_ray_launcher.task_env)
    cs = ConfigStore.instance()
    if "train_schema.yaml" in cs.repo and "schema" in cs.repo:
        return
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="serve_schema", node=ServeConfig)
    cs.store(name="monitor_schema", node=MonitorJobConfig)
    cs.store(name="predict_schema", node=PredictConfig)
    cs.store(group="schema/monitor", name="monitor", node=MonitorConfig)
    cs.store(group="schema/data", name="data", node=DataConfig)
    cs.store(group="schema/registry", name="registry", node=RegistryConfig)
    for name, schema in MODEL_SCHEMAS.items():
        cs.store(group="schema/model", name=name, node=schema)


def feature_columns(data_cfg: DataConfig) -> list[str]:
    """The raw feature columns a data config selects, in contract order."""
    return [name for name in FEATURE_NAMES if name not in set(data_cfg.exclude)]
