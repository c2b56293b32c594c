"""Warm start: a new study's first trial is the champion's parameters.

For a study with no trials yet, when the registry has a champion of the same model family on the
same data config, its run's parameters are enqueued (Optuna's `enqueue_trial`) wherever the
search space can hold them: the sweep then has the champion's CV score to beat from trial 0.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from obesity.compat.optuna_distributions import holds

log = logging.getLogger(__name__)


def enqueue_champion(study: optuna.Study, config: DictConfig, space: dict[str, Any]) -> None:
    """Enqueue the champion's parameters as `study`'s first trial (and say so), if there is one
    for this model and data; a store that cannot be read only means no warm start."""
    from obesity.registry.aliases import alias_version
    from obesity.stores import tracking

    reg = config.registry
    try:
        champion = alias_version(tracking.client(reg), reg.model_name, reg.champion_alias)
        if champion is None or not champion.run_id:
            return
        family = (champion.tags.get("model"), champion.tags.get("data"))
        if family != (config.model.name, config.data.name):
            log.info("study %s: no warm start: %s@%s (version %s) is model=%s data=%s",
                     study.study_name, reg.model_name, reg.champion_alias, champion.version,
                     *family)
            return
        trained = OmegaConf.structured(tracking.run_config(champion.run_id))
    except Exception as exc:  # no registry yet, unreadable artifacts: a cold start
        log.info("study %s: no warm start (%s: %s)", study.study_name, type(exc).__name__, exc)
        return
    params, sampled = champion_params(trained, space, config.hydra.sweeper.get("custom_search_space"))
    study.enqueue_trial(params, user_attrs={"warm_start": f"{reg.model_name} version "
                                                         f"{champion.version}"})
    log.info("study %s: warm start: trial 0 runs the parameters of %s@%s (version %s): %s%s",
             study.study_name, reg.model_name, reg.champion_alias, champion.version, params,
             f"; sampled instead (outside the search space): {', '.join(sampled)}" if sampled else "")


def champion_params(trained: DictConfig, space: dict[str, Any], custom: str | None
                    ) -> tuple[dict[str, Any], list[str]]:
    """The champion's values of the swept parameters: the override space's, and those the
    custom search space asks for on the champion's own branch; and the names whose champion
    value the space cannot hold (those the trial samples)."""
    params: dict[str, Any] = {}
    sampled: list[str] = []
    for name, distribution in space.items():
        value = OmegaConf.select(trained, name, default=None)
        if holds(distribution, value):
            params[name] = value
        else:
            sampled.append(f"{name}={value}")
    if custom:
        from hydra.utils import get_method

        asked = _Asked(trained)
        get_method(custom)(trained, asked)
        params |= {name: value for name, value in asked.values.items() if value is not None}
    return params, sampled


class _Asked:
    """Stands in for an Optuna trial in a custom search space: answers each suggestion with the
    champion's value, so the space follows the champion's branch, and records what it asked."""

    def __init__(self, trained: DictConfig) -> None:
        self.trained = trained
        self.values: dict[str, Any] = {}

    def _suggest(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.values[name] = OmegaConf.select(self.trained, name, default=None)
        return self.values[name]

    suggest_float = suggest_int = suggest_categorical = _suggest
