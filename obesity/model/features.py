"""Feature steps that run inside the model pipeline (so they are fit only on training folds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


class AddBMI(TransformerMixin, BaseEstimator):
    """Append BMI = Weight / Height**2 as a column.

    A class of its own, not a FunctionTransformer, so that skops can trust it by name and an ONNX
    converter can be registered for it.
    """

    def __init__(self, height: str = "Height", weight: str = "Weight") -> None:
        self.height = height
        self.weight = weight

    def fit(self, X: pd.DataFrame, y: object = None) -> AddBMI:
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        out["BMI"] = X[self.weight].astype("float64") / X[self.height].astype("float64") ** 2
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray([*self.feature_names_in_, "BMI"], dtype=object)
