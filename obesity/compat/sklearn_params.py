"""scikit-learn's check of an estimator's parameters (`BaseEstimator._validate_params`, private):
it runs at fit time, deep inside a CV worker; called at build time a bad value fails before any
data is read, naming the parameter."""

from __future__ import annotations

from typing import Any


def validate_params(estimator: Any) -> None:
    """sklearn's InvalidParameterError (a ValueError) naming the parameter and what it may be."""
    estimator._validate_params()
