"""hydra-ray-launcher 1.2.2 with the pinned Hydra and OmegaConf, and where a Ray task runs.

Importing the plugin (Hydra imports every installed plugin when it first composes) calls
`OmegaConf.register_new_resolver`, which this OmegaConf marks deprecated: Hydra's plugin scanner
prints that warning, five lines, in every command once the `ray` extra is installed. The filter
hides that one warning of that one module (the resolver works).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

_PLUGIN_WARNING = r"register_new_resolver\(\) is deprecated"
_PLUGIN_MODULE = r"hydra_plugins\.hydra_ray_launcher\."
# the same filter for a Ray worker, which imports the plugin before any of this code runs
_PLUGIN_WARNING_ENV = ("ignore:register_new_resolver() is deprecated:UserWarning:"
                       "hydra_plugins.hydra_ray_launcher._config")


def quiet_plugin_import() -> Any:
    """Install the filter; returns its entry in `warnings.filters` (to remove it again)."""
    warnings.filterwarnings("ignore", _PLUGIN_WARNING, UserWarning, _PLUGIN_MODULE)
    return warnings.filters[0]


def task_env(*names: str) -> dict[str, str]:
    """`${obesity.ray_task_env:NAME,...}` (configs/hydra/launcher/ray_cluster.yaml): the
    environment every Ray task of a sweep starts with: those of `names` set here (the stores:
    a node's own environment may lack them) and the plugin's warning filter."""
    return {**{name: os.environ[name] for name in names if name in os.environ},
            "PYTHONWARNINGS": _PLUGIN_WARNING_ENV}


def ray_node() -> str | None:
    """The id of the Ray node this process is a worker of, or None outside Ray. Never imports
    Ray (a second of start-up): only a process Ray started has it imported and initialized."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return str(ray.get_runtime_context().get_node_id())
