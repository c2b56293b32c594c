"""obesity: train, sweep, record, promote and serve obesity-level classifiers.

The Python API (see README, "Python API"): `compose`, `fit`, `load_data`, `load_champion`,
`command_line`, and the error types. Imported lazily, so `python -m obesity.<entrypoint>` and
Hydra's plugin scan do not pay for them.
"""

from __future__ import annotations

from typing import Any

from obesity.errors import ConfigError, DataError, ObesityError

__all__ = [
    "ConfigError",
    "DataError",
    "ObesityError",
    "RegistryError",
    "command_line",
    "compose",
    "fit",
    "load_champion",
    "load_data",
]
_API = {"compose", "fit", "load_data", "load_champion", "command_line"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from obesity import api

        return getattr(api, name)
    if name == "RegistryError":
        from obesity.errors import RegistryError

        return RegistryError
    raise AttributeError(f"module 'obesity' has no attribute {name!r}")
