"""Registers obesity's structured-config schemas when Hydra scans its plugins.

`python -m obesity.*` imports obesity.config itself; DVC's Hydra composition (`dvc exp run -S`)
does not, but it does scan this namespace first, so `train_schema` and `schema/...` resolve there too.
"""

import obesity.config.schemas  # noqa: F401  (ConfigStore registration on import)
