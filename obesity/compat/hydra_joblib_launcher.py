"""hydra-joblib-launcher's translation of its config into joblib's arguments (`_core`, private):
the workers are warmed with exactly the arguments the launcher will give joblib."""

from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

__all__ = ["process_joblib_cfg"]
