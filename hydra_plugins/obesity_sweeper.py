"""Hydra discovers sweeper plugins in the `hydra_plugins` namespace; ours lives in obesity.sweeper."""

from obesity.sweep.sweeper import StudySweeper  # noqa: F401
