"""hydra-optuna-sweeper's implementation class and override parser (`_impl`, private).

obesity/sweep/study.py subclasses `OptunaSweeperImpl` and calls its `_process_searchspace_config`,
`_parse_sweeper_params_config`, `_get_directions` and `_configure_trials`: the plugin has no
public way to run its loop on a shared, resumable study.
"""

from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides

__all__ = ["OptunaSweeperImpl", "create_params_from_overrides"]
