"""The registry CLI's commands: each takes the composed config and the parsed args, returns text."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from obesity.config.compose import sweep_command
from obesity.config.schemas import TrainConfig
from obesity.errors import RegistryError
from obesity.model import files as model_files
from obesity.model.baseline import baseline_scores
from obesity.registry import aliases, policy, promote
from obesity.registry.evidence import compare as compare_predictions
from obesity.registry.evidence import judge
from obesity.stores import locks, tracking


def _client(cfg: TrainConfig) -> MlflowClient:
    tracking.setup(cfg.registry)
    return MlflowClient()


def _versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """All versions of `name`, oldest first, with their aliases filled in."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        data = name.removeprefix("obesity_") if name.startswith("obesity_") else "full"
        raise RegistryError(
            f"no registered model {name!r} yet: run a sweep ({sweep_command(data)}) to register "
            "one") from None
    found = client.search_model_versions(f"name = '{name}'", max_results=10_000)
    for v in found:  # search results leave aliases empty; the model knows them
        v.aliases = sorted(a for a, ver in model.aliases.items() if str(ver) == str(v.version))
    return sorted(found, key=lambda v: int(v.version))


def _version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    try:
        return client.get_model_version(name, str(int(version)))
    except (MlflowException, ValueError):
        known = ", ".join(str(v.version) for v in _versions(client, name))
        raise RegistryError(f"{name}: no version {version!r} (versions: {known})") from None


def _table(rows: list[dict]) -> str:
    """Rows as a text table; a key some rows lack is "-" there (never NaN)."""
    return pd.DataFrame(rows).fillna("-").to_string(index=False) if rows else "(none)"


def list_models(cfg: TrainConfig, args: argparse.Namespace) -> str:
    client = _client(cfg)
    models = client.search_registered_models()
    if not models:
        return f"the registry is empty: run a sweep ({sweep_command(cfg.data.name)})"
    return _table([{"name": m.name, "versions": len(_versions(client, m.name)),
                    "aliases": ", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items()))}
                   for m in models])


def versions(cfg: TrainConfig, args: argparse.Namespace) -> str:
    reg = cfg.registry
    client = _client(cfg)
    rows = []
    for v in _versions(client, reg.model_name):
        rows.append({"version": v.version, "aliases": ",".join(v.aliases) or "-",
                     "model": v.tags.get("model", "?"), "data": v.tags.get("data", "?"),
                     **{m: v.tags.get(m, "-") for m in reg.tagged_metrics},
                     "status": v.tags.get("validation_status", "-"),
                     # the monitor's last verdict on this version (docs/monitoring.md)
                     "drift": v.tags.get("drift_status", "-"),
                     "drift_share": v.tags.get("drift_share", "-"),
                     # the labels that came back (monitor) and other labelled files (evaluate)
                     "realized": _realized(v.tags),
                     "evaluated": (f"{v.tags['evaluated_accuracy']} on {v.tags['evaluated_on']}"
                                   if "evaluated_accuracy" in v.tags else "-"),
                     "data_md5": v.tags.get("data_md5", "-")[:8],
                     "created": when(v.creation_timestamp)})
    return _table(rows)


def _realized(tags: dict[str, str]) -> str:
    if "performance_status" not in tags:
        return "-"
    accuracy = tags.get("realized_accuracy", "-")
    return (f"{tags['performance_status']}: {accuracy} on {tags.get('realized_rows', '?')} "
            "labels" if accuracy != "-" else tags["performance_status"])


def _on_file(args: argparse.Namespace) -> bool:
    """Did the command line name a labelled file (data.path=...)?"""
    return any(o.lstrip("+~").split("=", 1)[0] == "data.path"
               for o in [*args.override, *getattr(args, "overrides", [])])


def evaluate(cfg: TrainConfig, args: argparse.Namespace) -> str:
    from obesity.registry.evaluation import evaluate as evaluate_version

    if not _on_file(args):
        raise RegistryError("name the labelled file: `python -m obesity.registry evaluate "
                            f"{args.version} data.path=cohort.csv` (it must pass the data contract)")
    client = _client(cfg)
    version = _version(client, cfg.registry.model_name, args.version)
    return evaluate_version(client, cfg, version).line(cfg.registry.alpha)


def compare(cfg: TrainConfig, args: argparse.Namespace) -> str:
    reg = cfg.registry
    client = _client(cfg)
    a, b = _version(client, reg.model_name, args.a), _version(client, reg.model_name, args.b)
    ma = client.get_run(policy.run_of(a)).data.metrics
    mb = client.get_run(policy.run_of(b)).data.metrics
    names = sorted(k for k in set(ma) | set(mb) if not k.startswith("time_"))
    rows = [{"metric": k, f"v{a.version}": ma.get(k, np.nan), f"v{b.version}": mb.get(k, np.nan),
             "diff": mb.get(k, np.nan) - ma.get(k, np.nan)} for k in names]
    if _on_file(args):  # a labelled file neither may have seen (one of them trained on it: said)
        from obesity.data.contract import TARGET
        from obesity.data.load import select_features
        from obesity.registry.evaluation import labelled_file

        dataset = labelled_file(cfg, b)
        labelled_file(cfg, a)
        X, y = select_features(dataset.frame), dataset.frame[TARGET]
        where = f"{dataset.path.name} (md5 {dataset.md5[:8]}, {len(y)} rows)"
    else:
        split = policy.test_split_of(b)
        X, y = split.X_test, split.y_test
        where = f"version {b.version}'s test split ({len(y)} rows)"
    pred_a = model_files.load_pipeline(reg.model_name, a.version).predict(X)
    pred_b = model_files.load_pipeline(reg.model_name, b.version).predict(X)
    agreement = float(np.mean(np.asarray(pred_a) == np.asarray(pred_b)))
    found = compare_predictions(y, pred_b, pred_a, reg.promotion_metric, alpha=reg.alpha,
                                samples=reg.bootstrap_samples, seed=reg.bootstrap_seed)
    verdict = judge(found, reg.guard, reg.promotion_margin, reg.tolerance, f"version {a.version}",
                    str(a.version))
    baseline = baseline_scores(X, y, "test")[reg.promotion_metric]
    same = a.tags.get("data_md5") == b.tags.get("data_md5")
    return (pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.4f}")
            + f"\n\non {where}:"
            f"\n  label agreement {agreement:.4f}"
            f"\n  version {b.version} - version {a.version}: {found.figures()}"
            f"\n  the guard ({reg.guard}) would say: {'promote' if verdict.promote else 'keep'}"
            f"\n  BMI rule (no learning) {reg.promotion_metric} {baseline:.4f}: version {a.version} "
            f"{_margin(ma, reg.promotion_metric, baseline)}, version {b.version} "
            f"{_margin(mb, reg.promotion_metric, baseline)}"
            + ("" if same else "\n(note: the two versions were trained on different data versions)"))


def _margin(metrics: dict[str, float], metric: str, baseline: float) -> str:
    return f"{metrics[metric] - baseline:+.4f}" if metric in metrics else "-"


def card(cfg: TrainConfig, args: argparse.Namespace) -> str:
    from obesity.registry import card as model_card

    client = _client(cfg)
    version = _version(client, cfg.registry.model_name, args.version)
    return model_card.read(client, version) + model_card.since_registration(version.tags)


def best(cfg: TrainConfig, args: argparse.Namespace) -> str:
    reg = cfg.registry
    metric = args.metric or reg.promotion_metric
    client = _client(cfg)
    scored = [(client.get_run(policy.run_of(v)).data.metrics.get(metric), v)
              for v in _versions(client, reg.model_name)]
    scored = [(s, v) for s, v in scored if s is not None]
    if not scored:
        raise RegistryError(f"no version of {reg.model_name} has a metric {metric!r}")
    score, v = max(scored, key=lambda sv: (sv[0], int(sv[1].version)))
    return f"version {v.version}: {metric}={score:.4f} (aliases: {', '.join(v.aliases) or '-'})"


def promote_version(cfg: TrainConfig, args: argparse.Namespace) -> str:
    reg = cfg.registry
    client = _client(cfg)
    candidate = _version(client, reg.model_name, args.version)
    with locks.registry_lock(reg):
        decision = policy.decide(client, reg, candidate, force=args.force)
        if not decision.promote:
            raise RegistryError(f"not promoted: {decision.why}")
        aliases.set_alias(client, reg, reg.champion_alias, candidate.version, decision.why,
                          kind="promote", evidence=decision.evidence)
    return f"{reg.champion_alias} -> version {candidate.version}: {decision.why}"


def move_alias(cfg: TrainConfig, args: argparse.Namespace) -> str:
    reg = cfg.registry
    if args.name == reg.champion_alias:
        raise RegistryError(f"use `promote {args.version}` to move {reg.champion_alias} "
                            "(it is guarded)")
    client = _client(cfg)
    version = _version(client, reg.model_name, args.version)
    aliases.set_alias(client, reg, args.name, version.version, "set by hand", kind="alias")
    return f"{args.name} -> version {version.version}"


def roll_back(cfg: TrainConfig, args: argparse.Namespace) -> str:
    reg = cfg.registry
    client = _client(cfg)
    _versions(client, reg.model_name)
    version = aliases.rollback(client, reg)
    return f"{reg.champion_alias} -> version {version} (rolled back)"


def history(cfg: TrainConfig, args: argparse.Namespace) -> str:
    reg = cfg.registry
    client = _client(cfg)
    _versions(client, reg.model_name)
    # as written: a version is a number, not a float, and "no previous version" is "-", not NaN
    return _table([{key: "-" if value is None else str(value) for key, value in entry.items()}
                   for entry in aliases.alias_log(client, reg.model_name)])


def register_run(cfg: TrainConfig, args: argparse.Namespace) -> str:
    """What a sweep does at its end, for any finished run (a trial, a grid child, a single run)."""
    client = _client(cfg)
    try:
        run = client.get_run(args.run_id)
    except MlflowException:
        raise RegistryError(f"no run {args.run_id!r} in {cfg.registry.tracking_uri}") from None
    if run.info.status != "FINISHED":
        raise RegistryError(f"run {args.run_id} is {run.info.status}, not FINISHED")
    result = promote.promote_run(cfg, run)
    champion = f"; {cfg.registry.champion_alias} -> version {result.champion}" if result.champion else ""
    return f"version {result.version} ({result.validation_status}): {result.why}{champion}"


def keygen(cfg: TrainConfig, args: argparse.Namespace) -> str:
    from pathlib import Path

    from obesity.registry.manifest import generate

    private, public = generate(Path(args.folder))
    return (f"signing key {private} (for the processes that register: registry.signing_key)\n"
            f"verify key {public} (for services and promotion: registry.verify_key)")


def when(ms: int | None) -> str:
    return datetime.fromtimestamp((ms or 0) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


# `python -m obesity.registry <command>` -> the function that runs it
COMMANDS: dict[str, Callable[[TrainConfig, argparse.Namespace], str]] = {
    "list": list_models, "versions": versions, "compare": compare, "best": best,
    "promote": promote_version, "alias": move_alias, "rollback": roll_back, "history": history,
    "register": register_run, "card": card, "keygen": keygen, "evaluate": evaluate,
}
