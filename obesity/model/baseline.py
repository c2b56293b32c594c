"""The honest baseline: the label's own definition as a classifier, no learned parameters.

The dataset's classes were assigned by BMI (Weight / Height²) thresholds: 18.5, 25, 27, 30, 35 and
40 kg/m². `BMIRule` applies them; on this data that alone scores about 0.94 accuracy, so a learned
model is only as good as its margin over it (reported beside every learned model's scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline

from obesity.config.schemas import BMIRuleConfig
from obesity.data.contract import CLASSES

# kg/m², between the 7 ordered classes: written once, as model=bmi_rule's default
WHO_THRESHOLDS: tuple[float, ...] = tuple(BMIRuleConfig().thresholds)


class BMIRule(ClassifierMixin, BaseEstimator):
    """BMI -> class by `thresholds` (the class boundaries, ascending). Reads the `BMI` column
    (obesity.model.features.AddBMI puts it there); fit only records the classes."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"thresholds": ["array-like"]}

    def __init__(self, thresholds: Sequence[float] = WHO_THRESHOLDS) -> None:
        self.thresholds = thresholds

    def fit(self, X: pd.DataFrame, y: Any = None) -> BMIRule:
        if len(self.thresholds) != len(CLASSES) - 1 or list(self.thresholds) != sorted(self.thresholds):
            raise ValueError(f"thresholds: {len(CLASSES) - 1} ascending BMI boundaries between the "
                             f"classes, got {list(self.thresholds)}")
        self.classes_ = np.array(CLASSES)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        level = np.searchsorted(np.asarray(self.thresholds, dtype=float), X["BMI"].to_numpy(),
                                side="right")  # 18.5 itself is Normal_Weight, as in the labels
        return self.classes_[level]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Certain: 1 for the rule's class, 0 for the others."""
        predicted = self.predict(X)
        return (predicted[:, None] == self.classes_[None, :]).astype(float)


def rule_pipeline(thresholds: Sequence[float] = WHO_THRESHOLDS) -> Pipeline:
    """Raw columns in, class out: the BMI step, then the rule (fitted: it learns nothing)."""
    from obesity.model.features import AddBMI

    return Pipeline([("bmi", AddBMI()), ("model", BMIRule(tuple(float(t) for t in thresholds)))])


def baseline_scores(X: pd.DataFrame, y: pd.Series, prefix: str) -> dict[str, float]:
    """The rule's `prefix`_* scores on these rows (X: the raw columns, Height and Weight among
    them): what a learned model's scores on the same rows are measured against."""
    from obesity.model import evaluate

    return evaluate.score(rule_pipeline().fit(X, y), X, y, prefix=prefix).metrics
