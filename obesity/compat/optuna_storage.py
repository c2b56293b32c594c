"""Optuna's heartbeat of a trial (private: `Study._storage`, `Trial._trial_id`, the
`storages._heartbeat` interface): a sweep beats for trials another process runs."""

from __future__ import annotations

from typing import Any

from optuna.storages._heartbeat import BaseHeartbeat

__all__ = ["BaseHeartbeat", "record_heartbeat"]


def record_heartbeat(study: Any, trial: Any) -> None:
    """Record that `trial` of `study` is alive now (its storage: the one the study was loaded
    with, which Optuna wraps in a cache that beats through)."""
    storage = study._storage
    if not isinstance(storage, BaseHeartbeat):
        raise TypeError(f"optuna study storage {type(storage).__name__} has no heartbeat")
    storage.record_heartbeat(trial._trial_id)
