"""Hydra discovers sweeper plugins in the `hydra_plugins` namespace; ours lives in obesity.sweeper."""

from obesity.sweeper import StudySweeper  # noqa: F401
