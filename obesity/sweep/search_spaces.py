"""Conditional search spaces (`hydra.sweeper.custom_search_space`): what the override grammar
cannot say. Each function gets the sweep config and the Optuna trial, and suggests parameters
named by their config keys; a parameter not suggested keeps its config value."""

from __future__ import annotations

from omegaconf import DictConfig
from optuna.trial import Trial


def forest(cfg: DictConfig, trial: Trial) -> None:
    """rf/et: a row fraction per tree exists only when trees bootstrap."""
    if trial.suggest_categorical("model.bootstrap", [True, False]):
        trial.suggest_float("model.max_samples", 0.5, 1.0)


def logistic(cfg: DictConfig, trial: Trial) -> None:
    """lr: the L1/L2 mix exists only for the saga solver (lbfgs is L2 only)."""
    if trial.suggest_categorical("model.solver", ["lbfgs", "saga"]) == "saga":
        trial.suggest_float("model.l1_ratio", 0.0, 1.0)
