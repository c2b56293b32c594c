"""Refit a finished run's exact config, register the model and let the policy decide its aliases:
what a sweep's end and `python -m obesity.registry register RUN_ID` share."""

from __future__ import annotations

import dataclasses
import logging
import shlex

import mlflow
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from obesity.config.schemas import RegistryConfig, TrainConfig
from obesity.registry import manifest, policy
from obesity.registry.policy import DECIDED_TAG, Promotion, decide_version, split_id
from obesity.stores import tracking
from obesity.training import job as training

log = logging.getLogger(__name__)


def promote_run(cfg: TrainConfig, best_run: Run, sweep_run_id: str | None = None) -> Promotion:
    """Refit `best_run`'s exact config on the train split, score it once on the test split,
    register it and move the aliases. Callable alone with any finished run id."""
    client = MlflowClient()
    reg = cfg.registry
    done = client.search_model_versions(
        f"name = '{reg.model_name}' and tags.refit_of = '{best_run.info.run_id}'")
    if done:  # a rerun of a finished study: its best trial is registered already
        v = done[0]
        if DECIDED_TAG not in v.tags:  # killed between registering and deciding: finish it
            log.info("best run %s is registered as version %s but was never decided: deciding "
                     "now", best_run.info.run_id, v.version)
            return decide_version(client, cfg, v)
        log.info("best run %s is registered already as version %s: nothing to promote",
                 best_run.info.run_id, v.version)
        return Promotion(str(v.version), v.tags.get("validation_status", "?"), None,
                         "registered already")
    refit_cfg = tracking.run_config(best_run.info.run_id)
    copy = champion_copy(client, reg, refit_cfg, best_run)
    if copy is not None:  # e.g. a warm-started retrain whose best trial is the champion's own
        log.info("best run %s is %s's own configuration on the same data: nothing new to register",
                 best_run.info.run_id, f"{reg.champion_alias} (version {copy.version})")
        return Promotion(str(copy.version), copy.tags.get("validation_status", "?"), None,
                         f"the best trial is {reg.champion_alias} version {copy.version} again")
    # The trial's config, plus what a promotion needs: the fitted model and the test score.
    # (and the registry settings of this invocation win)
    refit_cfg = dataclasses.replace(refit_cfg, log_model=True, evaluate_test=True, log_figures=True,
                                    trial=None, run_name=f"refit of {best_run.info.run_name}",
                                    registry=cfg.registry)
    # No `trial` tag on the refit: the sweep looks trials up by it.
    tags = {"refit_of": best_run.info.run_id,
            **{f"refit_of_{k}": v for k, v in best_run.data.tags.items() if k == "trial"},
            **{k: v for k, v in best_run.data.tags.items() if k == "study"}}
    overrides = split_overrides(best_run.data.params.get("overrides", ""))
    # its CV is the run's own (same config, data and folds): reused, not fitted again
    result = training.run(refit_cfg, overrides=overrides, parent_run_id=sweep_run_id, tags=tags,
                          cv_of=best_run.info.run_id)
    return register_and_promote(refit_cfg, result, sweep_run_id=sweep_run_id, extra_tags=tags)


def champion_copy(client: MlflowClient, reg: RegistryConfig, trained: TrainConfig,
                  run: Run) -> ModelVersion | None:
    """The champion, when `run` (whose resolved config is `trained`) fits exactly its model on
    exactly its data: same estimator parameters, data config, seed and data md5."""
    from obesity.config.values import plain
    from obesity.registry.aliases import alias_version

    champion = alias_version(client, reg.model_name, reg.champion_alias)
    if champion is None or any(champion.tags.get(k) != run.data.tags.get(k)
                               for k in ("data_md5", "data_extra_md5")):
        return None
    try:
        theirs = tracking.run_config(policy.run_of(champion))
    except Exception:  # its config cannot be read: not provably the same
        return None

    def key(cfg: TrainConfig) -> tuple:
        data = {k: v for k, v in plain(cfg.data).items() if k != "path"}  # the md5 says which file
        return plain(cfg.model), data, cfg.seed

    return champion if key(theirs) == key(trained) else None


def register_and_promote(cfg: TrainConfig, result, sweep_run_id: str | None = None,
                         extra_tags: dict[str, str] | None = None) -> Promotion:
    """Register a logged model (`result` of training.run) and move challenger/champion."""
    reg = cfg.registry
    client = MlflowClient()
    run = client.get_run(result.run_id)
    score = result.metrics[reg.promotion_metric]
    status = "approved" if score >= reg.promotion_threshold else "rejected"
    tags = {
        "validation_status": status,
        "run_id": result.run_id,
        "data_md5": run.data.tags["data_md5"],
        **{k: v for k, v in run.data.tags.items() if k == "data_extra_md5"},
        "split": split_id(cfg),
        "git_commit": run.data.tags.get("git_commit", "unknown"),
        "model": cfg.model.name,
        "data": cfg.data.name,
        # the promotion metric too, whatever it is: decide() reads it from the tags
        **{k: f"{result.metrics[k]:.6f}" for k in (*reg.tagged_metrics, reg.promotion_metric)
           if k in result.metrics},
        **({"sweep_run_id": sweep_run_id} if sweep_run_id else {}),
        **baseline_tags(cfg, reg.promotion_metric, score),
        **(extra_tags or {}),
    }
    manifest.check_signing_key(reg)  # a key that cannot sign fails before a version exists
    version = mlflow.register_model(result.model_uri, reg.model_name, tags=tags)
    version = client.get_model_version(reg.model_name, version.version)
    return decide_version(client, cfg, version, model=result.model)


def baseline_tags(cfg: TrainConfig, metric: str, score: float) -> dict[str, str]:
    """The BMI rule's `metric` on the same test rows, and the margin of `score` over it."""
    from obesity.data.split import split_of
    from obesity.model.baseline import baseline_scores

    _, split = split_of(cfg.data)  # every raw column: the rule needs Height and Weight
    baseline = baseline_scores(split.X_test, split.y_test, prefix="test")[metric]
    return {f"baseline_{metric}": f"{baseline:.6f}", "margin_over_baseline": f"{score - baseline:.6f}"}


def split_overrides(logged: str) -> list[str]:
    """A run's `overrides` param back as a list (shlex-quoted since values may hold spaces)."""
    if logged == "(none)":
        return []
    try:
        return shlex.split(logged)
    except ValueError:  # logged before the quoting, with an unbalanced quote in a value
        return logged.split()
