"""Register a model version and move the aliases, guarded so the champion never gets worse.

Rules (config `registry`):
- `validation_status` is `approved` when the promotion metric (test split) >= threshold, else
  `rejected`; a rejected version is never champion (not even with --force).
- `challenger` always moves to the newest registered candidate.
- `champion` moves only if there is none, or the candidate beats the champion by more than the
  margin ON THE SAME TEST SPLIT: the stored test score when the data md5 and split match,
  otherwise the champion is re-scored on the candidate's test split.
- every alias move is a registered-model tag `alias_log.NNNNNN` (who, when, from, to, why);
  `rollback` walks that log back. Alias moves on one model are serialised (stores.registry_lock).
- a registered version is decided exactly once: the tag `promotion` is written (under the lock)
  after its aliases moved; a rerun that finds a registered version without it (the process was
  killed in between) finishes the decision.
- only a model the framework produced can become champion (obesity.model_files), even forced.
"""

from __future__ import annotations

import getpass
import json
import logging
import shlex
import socket
from dataclasses import dataclass
from datetime import datetime, timezone

import mlflow
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from obesity import model_files, tracking
from obesity.config import feature_columns
from obesity.errors import DataError, ModelRefused, RegistryError
from obesity.stores import registry_lock

log = logging.getLogger("obesity.promotion")
LOG_PREFIX = "alias_log."
DECIDED_TAG = "promotion"  # on a version once its aliases were decided (the decision's why)
METRIC_TAGS = ("test_f1_macro", "test_accuracy", "cv_f1_macro_mean", "cv_accuracy_mean")
__all__ = ["RegistryError", "registry_lock"]  # re-exported: older imports keep working


@dataclass(frozen=True)
class Decision:
    promote: bool
    why: str


@dataclass(frozen=True)
class Promotion:
    version: str
    validation_status: str
    champion: str | None
    why: str


def promote_run(cfg: DictConfig, best_run: Run, sweep_run_id: str | None = None) -> Promotion:
    """Refit `best_run`'s exact config on the train split, score it once on the test split,
    register it and move the aliases. Callable alone with any finished run id."""
    from obesity import training

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
    # The trial's config, plus what a promotion needs: the fitted model and the test score.
    for key, value in {"log_model": True, "evaluate_test": True, "log_figures": True, "trial": None,
                       "run_name": f"refit of {best_run.info.run_name}"}.items():
        refit_cfg[key] = value
    refit_cfg.registry = cfg.registry  # registry settings of this invocation win
    # No `trial` tag on the refit: the sweep looks trials up by it.
    tags = {"refit_of": best_run.info.run_id,
            **{f"refit_of_{k}": v for k, v in best_run.data.tags.items() if k == "trial"},
            **{k: v for k, v in best_run.data.tags.items() if k == "study"}}
    overrides = split_overrides(best_run.data.params.get("overrides", ""))
    result = training.run(refit_cfg, overrides=overrides, parent_run_id=sweep_run_id, tags=tags)
    return register_and_promote(refit_cfg, result, sweep_run_id=sweep_run_id, extra_tags=tags)


def register_and_promote(cfg: DictConfig, result, sweep_run_id: str | None = None,
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
        "split": split_id(cfg),
        "git_commit": run.data.tags.get("git_commit", "unknown"),
        "model": cfg.model.name,
        "data": cfg.data.name,
        # the promotion metric too, whatever it is: decide() reads it from the tags
        **{k: f"{result.metrics[k]:.6f}" for k in (*METRIC_TAGS, reg.promotion_metric)
           if k in result.metrics},
        **({"sweep_run_id": sweep_run_id} if sweep_run_id else {}),
        **(extra_tags or {}),
    }
    version = mlflow.register_model(result.model_uri, reg.model_name, tags=tags)
    version = client.get_model_version(reg.model_name, version.version)
    return decide_version(client, cfg, version, model=result.model)


def decide_version(client: MlflowClient, cfg: DictConfig, version: ModelVersion,
                   model=None) -> Promotion:
    """Give a registered version its ONNX twin, then move challenger and (guarded) champion,
    exactly once: a version with the `promotion` tag was decided already."""
    reg = cfg.registry
    if reg.onnx_twin and "onnx" not in version.tags:
        # before any alias moves, so a service never sees the version without it
        from obesity import onnx_twin

        if model is None:
            model = model_files.load_pipeline(reg.model_name, version.version)
        split = test_split_of(version)
        onnx_twin.attach(client, model, version, split.X_test[feature_columns(cfg.data)])
    champion = None
    with registry_lock(reg):  # concurrent promotions decide against the champion one at a time
        version = client.get_model_version(reg.model_name, version.version)
        if DECIDED_TAG in version.tags:  # another process finished it meanwhile
            return Promotion(str(version.version), version.tags.get("validation_status", "?"),
                             None, version.tags[DECIDED_TAG])
        challenger = alias_version(client, reg.model_name, reg.challenger_alias)
        if challenger is None or challenger.version != version.version:
            set_alias(client, reg, reg.challenger_alias, version.version, "new candidate")
        decision = decide(client, reg, version)
        if decision.promote:
            set_alias(client, reg, reg.champion_alias, version.version, decision.why)
            champion = str(version.version)
        client.set_model_version_tag(reg.model_name, version.version, DECIDED_TAG, decision.why)
    status = version.tags.get("validation_status", "?")
    log.info("registered %s version %s (%s, %s=%s): %s", reg.model_name, version.version,
             status, reg.promotion_metric, version.tags.get(reg.promotion_metric, "?"),
             f"now {reg.champion_alias}: {decision.why}" if decision.promote else decision.why)
    return Promotion(str(version.version), status, champion, decision.why)


def split_overrides(logged: str) -> list[str]:
    """A run's `overrides` param back as a list (shlex-quoted since values may hold spaces)."""
    if logged == "(none)":
        return []
    try:
        return shlex.split(logged)
    except ValueError:  # logged before the quoting, with an unbalanced quote in a value
        return logged.split()


def split_id(cfg: DictConfig) -> str:
    """What identifies the test split besides the data md5."""
    return f"seed={cfg.data.split_seed},test_size={cfg.data.test_size},stratify={cfg.data.stratify}"


def decide(client: MlflowClient, reg: DictConfig, candidate: ModelVersion,
           force: bool = False) -> Decision:
    """May `candidate` become champion? (see module docstring)"""
    metric, threshold = reg.promotion_metric, reg.promotion_threshold
    status = candidate.tags.get("validation_status")
    score = float(candidate.tags.get(metric, "nan"))
    if status != "approved":
        return Decision(False, f"version {candidate.version} is {status}: {metric}={score:.4f} "
                               f"< threshold {threshold}; never champion")
    try:
        model_files.check(reg.model_name, candidate.version)
    except ModelRefused as exc:
        return Decision(False, f"refused: {exc}")
    champion = alias_version(client, reg.model_name, reg.champion_alias)
    if champion is None:
        return Decision(True, f"no {reg.champion_alias} yet")
    if champion.version == candidate.version:
        return Decision(False, f"version {candidate.version} is already {reg.champion_alias}")
    champion_score = score_on_same_split(client, champion, candidate, metric)
    if force:
        return Decision(True, f"forced over version {champion.version} "
                              f"({metric} {score:.4f} vs {champion_score:.4f})")
    if score > champion_score + reg.promotion_margin:
        return Decision(True, f"{metric} {score:.4f} beats version {champion.version}'s "
                              f"{champion_score:.4f} by {score - champion_score:.2g} "
                              f"(> margin {reg.promotion_margin})")
    return Decision(False, f"{reg.champion_alias} stays version {champion.version}: candidate "
                           f"{metric} {score:.4f} does not beat {champion_score:.4f} "
                           f"+ margin {reg.promotion_margin} on the same test split")


def score_on_same_split(client: MlflowClient, champion: ModelVersion, candidate: ModelVersion,
                        metric: str) -> float:
    """The champion's `metric` on the candidate's test split (re-scored if the splits differ)."""
    same = all(champion.tags.get(k) == candidate.tags.get(k) for k in ("data_md5", "split"))
    if same and metric in champion.tags:
        return float(champion.tags[metric])
    from obesity import evaluate

    split = test_split_of(candidate)
    model = model_files.load_pipeline(champion.name, champion.version)
    return evaluate.score(model, split.X_test, split.y_test).metrics[metric]


def test_split_of(version: ModelVersion):
    """The held-out test split a version was scored on (from its run's resolved config)."""
    from obesity import data as data_io

    cfg = tracking.run_config(version.run_id)
    dataset = data_io.load(cfg.data.path)
    trained_on = version.tags.get("data_md5")
    if trained_on and dataset.md5 != trained_on:
        raise DataError(f"{cfg.data.path} is not the data {version.name} version "
                        f"{version.version} was trained on (md5 {dataset.md5}, the version's "
                        f"data_md5 {trained_on}): restore that file (e.g. `dvc checkout`) to "
                        "score or verify this version")
    # All raw feature columns: every model's signature selects the ones it was trained on.
    return data_io.split(dataset, cfg.data.test_size, cfg.data.split_seed, cfg.data.stratify)


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def set_alias(client: MlflowClient, reg: DictConfig, alias: str, version: str | int, why: str,
              kind: str = "move") -> None:
    """Point `alias` at `version` and append the move to the model's alias log, under the
    registry lock (re-entrant: callers that decide first hold it already)."""
    name = reg.model_name
    with registry_lock(reg):
        previous = alias_version(client, name, alias)
        client.set_registered_model_alias(name, alias, str(version))
        entry = {"alias": alias, "from": previous.version if previous else None,
                 "to": str(version), "kind": kind, "why": why,
                 "who": f"{getpass.getuser()}@{socket.gethostname()}",
                 "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        n = len(alias_log(client, name))
        client.set_registered_model_tag(name, f"{LOG_PREFIX}{n:06d}", json.dumps(entry))


def alias_log(client: MlflowClient, name: str) -> list[dict]:
    """Every recorded alias move of a registered model, oldest first."""
    tags = client.get_registered_model(name).tags
    return [json.loads(tags[k]) for k in sorted(tags) if k.startswith(LOG_PREFIX)]


def rollback(client: MlflowClient, reg: DictConfig) -> str:
    """Point champion back at the version it held before its last (not yet undone) move."""
    with registry_lock(reg):  # the log read and the move are one step
        return _rollback(client, reg)


def _rollback(client: MlflowClient, reg: DictConfig) -> str:
    stack: list[dict] = []
    for entry in alias_log(client, reg.model_name):
        if entry["alias"] != reg.champion_alias:
            continue
        if entry["kind"] == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(entry)
    if not stack or stack[-1]["from"] is None:
        raise RegistryError(f"{reg.model_name}: no previous {reg.champion_alias} to roll back to")
    last = stack[-1]
    set_alias(client, reg, reg.champion_alias, last["from"],
              f"rollback of the move {last['from']} -> {last['to']}", kind="rollback")
    return last["from"]
