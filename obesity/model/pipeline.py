"""Build the one sklearn Pipeline a config describes: raw columns in, class name out."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from obesity.compat.sklearn_params import validate_params
from obesity.config.schemas import ESTIMATOR_TARGETS, ModelConfig, TrainConfig, feature_columns
from obesity.config.values import plain
from obesity.data.contract import NUMERIC_FEATURES
from obesity.errors import ConfigError
from obesity.model.baseline import BMIRule, rule_pipeline
from obesity.model.features import AddBMI

# Keys of a model node that configure the framework, not the estimator.
FRAMEWORK_KEYS = frozenset(k for k in ModelConfig.__dataclass_fields__ if k != "_target_")


def estimator(model_cfg: ModelConfig) -> ClassifierMixin:
    """Instantiate the estimator of a model config (only whitelisted sklearn targets)."""
    params: dict[str, Any] = {
        k: v for k, v in plain(model_cfg).items()
        if k not in FRAMEWORK_KEYS
    }
    try:
        # _convert_="all": plain lists and dicts, never OmegaConf containers, inside a model
        built = instantiate(params, _execution_whitelist_=ESTIMATOR_TARGETS, _convert_="all")
        # sklearn checks hyperparameters only at fit time, deep inside a CV worker; check them
        # now so a bad value fails before any data is read, naming the parameter.
        validate_params(built)
    except Exception as exc:  # Hydra wraps the estimator's own complaint; surface it plainly
        cause = exc.__cause__ or exc
        raise ConfigError(f"model {model_cfg.name!r}: cannot build {params['_target_']}: {cause}") from None
    return built


def build(cfg: TrainConfig) -> Pipeline:
    """The full pipeline for `cfg.data` and `cfg.model`: features, encoders, estimator."""
    columns = feature_columns(cfg.data)
    model = estimator(cfg.model)
    if isinstance(model, BMIRule):  # the baseline reads BMI only: no encoders
        if not cfg.data.bmi or {"Height", "Weight"} - set(columns):
            raise ConfigError(f"model=bmi_rule needs Height, Weight and data.bmi=true "
                              f"(data={cfg.data.name} has not): use data=full")
        return rule_pipeline(model.thresholds)
    steps: list[tuple[str, Any]] = []
    numeric = [c for c in columns if c in NUMERIC_FEATURES]
    if cfg.data.bmi:
        missing = {"Height", "Weight"} - set(columns)
        if missing:
            raise ConfigError(
                f"data.bmi=true needs {', '.join(sorted(missing))}, which data.exclude removes; "
                "set data.bmi=false"
            )
        steps.append(("bmi", AddBMI()))
        numeric.append("BMI")
    categorical = [c for c in columns if c not in NUMERIC_FEATURES]
    encode = ColumnTransformer(
        [
            ("numeric", StandardScaler() if cfg.model.scale_numeric else "passthrough", numeric),
            # Unknown levels at predict time (CALC=Always occurs once) encode as all zeros.
            ("categorical", OneHotEncoder(handle_unknown="ignore", drop=None,
                                          sparse_output=False), categorical),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    steps += [("encode", encode), ("model", model)]
    return Pipeline(steps)
