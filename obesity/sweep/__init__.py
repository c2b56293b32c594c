"""Optuna sweeps through Hydra: the sweeper plugin, the resumable study loop, conditional search
spaces, the callback that tracks a multirun in MLflow and promotes its best trial, the report."""
