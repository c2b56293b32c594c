"""hydra-optuna-sweeper's plugin class and its config (light: the plugin imports Optuna only
when it sweeps), subclassed by obesity/sweep/sweeper.py."""

from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

__all__ = ["OptunaSweeper", "OptunaSweeperConf"]
