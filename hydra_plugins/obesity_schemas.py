"""Registers obesity's structured-config schemas when Hydra scans its plugins.

`python -m obesity.*` registers them itself (obesity.config.compose); DVC's Hydra composition
(`dvc exp run -S`) does not, but it does scan this namespace first, so `train_schema` and
`schema/...` resolve there too. Importing this module is the documented registration entry point.
"""

from obesity.config.schemas import register

register()
