"""Hydra discovers sweeper plugins in the `hydra_plugins` namespace; ours lives in
obesity.sweep.sweeper. Importing this module is the documented registration entry point of
`hydra/sweeper=study`."""

from obesity.sweep.sweeper import StudySweeper, register

__all__ = ["StudySweeper"]
register()
