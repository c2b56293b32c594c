"""The promotion policy: may a registered version become champion? Guarded so the champion
never gets worse.

Rules (config `registry`):
- `validation_status` is `approved` when the promotion metric (test split) >= threshold, else
  `rejected`; a rejected version is never champion (not even with --force).
- `challenger` always moves to the newest registered candidate.
- `champion` moves only if there is none, or the candidate beats the champion by more than the
  margin ON THE SAME TEST SPLIT: the stored test score when the data md5 and split match,
  otherwise the champion is re-scored on the candidate's test split.
- a registered version is decided exactly once: the tag `promotion` is written (under the
  registry lock) after its aliases moved; a rerun that finds a registered version without it (the
  process was killed in between) finishes the decision.
- only a model the framework produced can become champion (obesity.model.files), even forced.
Alias moves and their log: obesity.registry.aliases.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from obesity.config.schemas import RegistryConfig, TrainConfig, feature_columns
from obesity.data.split import Split
from obesity.errors import DataError, ModelRefused, RegistryError
from obesity.model import files as model_files
from obesity.registry import manifest
from obesity.registry.aliases import alias_version, set_alias
from obesity.registry.evidence import Evidence, compare, judge, too_little
from obesity.stores import tracking
from obesity.stores.locks import registry_lock

log = logging.getLogger(__name__)
DECIDED_TAG = "promotion"  # on a version once its aliases were decided (the decision's why)


@dataclass(frozen=True)
class Decision:
    promote: bool
    why: str
    evidence: Evidence | None = None  # candidate vs the champion, when there was one to compare
    against: str | None = None  # the champion's version then


@dataclass(frozen=True)
class Promotion:
    version: str
    validation_status: str
    champion: str | None
    why: str






def decide_version(client: MlflowClient, cfg: TrainConfig, version: ModelVersion,
                   model=None) -> Promotion:
    """Give a registered version its ONNX twin, then move challenger and (guarded) champion,
    exactly once: a version with the `promotion` tag was decided already."""
    reg = cfg.registry
    if model is None:  # a rerun finishing a killed promotion: the twin, the guard and the card need it
        model = model_files.load_pipeline(reg.model_name, version.version)
    split = test_split_of(version)
    if reg.onnx_twin and "onnx" not in version.tags:
        # before any alias moves, so a service never sees the version without it
        from obesity.registry import twin

        twin.attach(client, model, version, split.X_test[feature_columns(cfg.data)], reg)
    champion = None
    with registry_lock(reg):  # concurrent promotions decide against the champion one at a time
        version = client.get_model_version(reg.model_name, version.version)
        if DECIDED_TAG in version.tags:  # another process finished it meanwhile
            return Promotion(str(version.version), version.tags.get("validation_status", "?"),
                             None, version.tags[DECIDED_TAG])
        challenger = alias_version(client, reg.model_name, reg.challenger_alias)
        if challenger is None or challenger.version != version.version:
            set_alias(client, reg, reg.challenger_alias, version.version, "new candidate")
        # the files were checked here just now; their manifest is written below
        decision = decide(client, reg, version, candidate_model=model, split=split,
                          bound=False)
        if decision.evidence is not None:  # the figures stay with the version
            for key, value in {**decision.evidence.tags(), "guard": reg.guard,
                               "guard_against": decision.against or ""}.items():
                client.set_model_version_tag(reg.model_name, version.version, key, value)
        # the card before the alias: a service that loads the new champion serves its card too
        _write_card(client, cfg, version, model, split, decision.why)
        # then the manifest of the files checked here (twin, card, skops), before any alias
        manifest.bind(client, reg, version)
        if decision.promote:
            set_alias(client, reg, reg.champion_alias, version.version, decision.why,
                      evidence=decision.evidence)
            champion = str(version.version)
        client.set_model_version_tag(reg.model_name, version.version, DECIDED_TAG, decision.why)
    status = version.tags.get("validation_status", "?")
    log.info("registered %s version %s (%s, %s=%s): %s", reg.model_name, version.version,
             status, reg.promotion_metric, version.tags.get(reg.promotion_metric, "?"),
             f"now {reg.champion_alias}: {decision.why}" if decision.promote else decision.why)
    return Promotion(str(version.version), status, champion, decision.why)


def _write_card(client: MlflowClient, cfg: TrainConfig, version: ModelVersion, model: Any,
                split: Split, why: str) -> None:
    """The version's model card; a card that cannot be written is logged, never a failed
    promotion (the version is tagged `card=failed`)."""
    from obesity.registry import card

    version = client.get_model_version(version.name, version.version)  # with its guard tags
    try:
        card.write(client, cfg, version, model, split, why)
    except Exception as exc:  # documentation must not block a decided promotion
        log.warning("no model card for %s version %s: %s: %s", version.name, version.version,
                    type(exc).__name__, exc)
        client.set_model_version_tag(version.name, version.version, card.TAG, "failed")


def split_id(cfg: TrainConfig) -> str:
    """What identifies the test split besides the data md5."""
    return f"seed={cfg.data.split_seed},test_size={cfg.data.test_size},stratify={cfg.data.stratify}"


def decide(client: MlflowClient, reg: RegistryConfig, candidate: ModelVersion, force: bool = False,
           candidate_model: Any = None, split: Split | None = None, bound: bool = True) -> Decision:
    """May `candidate` become champion? (see module docstring). `candidate_model` and `split`
    (its fitted pipeline, its test split) when the caller has them already. `bound`: its files
    must be the ones its manifest binds (False only while registering, before the manifest)."""
    metric, threshold = reg.promotion_metric, reg.promotion_threshold
    status = candidate.tags.get("validation_status")
    score = float(candidate.tags.get(metric, "nan"))
    if status != "approved":
        return Decision(False, f"version {candidate.version} is {status}: {metric}={score:.4f} "
                               f"< threshold {threshold}; never champion")
    try:
        if bound:
            manifest.verify_files(candidate, reg)
        else:
            model_files.check(reg.model_name, candidate.version)
    except ModelRefused as exc:
        return Decision(False, f"refused: {exc}")
    split = split if split is not None else test_split_of(candidate)
    champion = alias_version(client, reg.model_name, reg.champion_alias)
    if champion is not None and champion.version == candidate.version:
        return Decision(False, f"version {candidate.version} is already {reg.champion_alias}")
    rows = decision_rows(split, champion)
    small = too_little(rows.y, reg.min_test_rows, reg.min_test_rows_per_class, rows.what)
    if small:  # even forced, and even with no champion yet: chance is not evidence
        return Decision(False, f"not enough evidence to decide: {small}")
    if champion is None:
        return Decision(True, f"no {reg.champion_alias} yet")
    found = evidence_against(reg, champion, candidate, candidate_model, rows)
    if force:
        return Decision(True, f"forced over version {champion.version}: candidate "
                              f"{found.figures()} on {rows.what} ({len(rows.y)} rows)", found,
                        str(champion.version))
    verdict = judge(found, reg.guard, reg.promotion_margin, reg.tolerance, reg.champion_alias,
                    str(champion.version))
    return Decision(verdict.promote, f"{verdict.why}; on {rows.what} ({len(rows.y)} rows)",
                    found, str(champion.version))


@dataclass(frozen=True)
class Rows:
    """The labelled rows a decision is made on, and what they are, in words."""

    X: Any
    y: Any
    what: str


def decision_rows(split: Split, champion: ModelVersion | None) -> Rows:
    """The candidate's FRESH labelled rows (held out of its extra files) that the champion did
    not train on either, when it has any; else its test split. Fresh rows are new people; the
    test split is a random split of a file of mostly generated rows, kind to every model."""
    if split.X_fresh is None or not len(split.X_fresh):
        return Rows(split.X_test, split.y_test, "the test split")
    X, y = split.X_fresh, split.y_fresh
    assert y is not None  # set together with X_fresh
    seen_note = ""
    if champion is not None:
        try:
            theirs = test_split_of(champion)
        except Exception as exc:  # its data cannot be read: say so rather than guess
            seen_note = (f"; whether version {champion.version} trained on some of them is "
                         f"unknown ({type(exc).__name__}: {exc})")
        else:
            seen = _row_keys(theirs.X_train, theirs.y_train)
            unseen = ~_row_keys(X, y).isin(seen).to_numpy()
            if not unseen.all():
                seen_note = (f"; {int((~unseen).sum())} row(s) version {champion.version} "
                             "trained on left out")
            X, y = X[unseen], y[unseen]
    return Rows(X, y, f"the fresh labelled rows {split.fresh_from}{seen_note}")


def _row_keys(X: Any, y: Any) -> Any:
    """One hash per row of the raw features and the label (which rows two data sets share)."""
    import pandas as pd

    from obesity.data.contract import FEATURE_NAMES

    return pd.util.hash_pandas_object(X[list(FEATURE_NAMES)].assign(label=y.to_numpy()),
                                      index=False)


def evidence_against(reg: RegistryConfig, reference: ModelVersion, candidate: ModelVersion,
                     candidate_model: Any = None, rows: Rows | None = None) -> Evidence:
    """Candidate vs `reference` on the same rows (by default the candidate's decision rows),
    paired."""
    if rows is None:
        rows = decision_rows(test_split_of(candidate), reference)
    if candidate_model is None:
        candidate_model = model_files.load_pipeline(reg.model_name, candidate.version)
    reference_model = model_files.load_pipeline(reference.name, reference.version)
    return compare(rows.y, candidate_model.predict(rows.X), reference_model.predict(rows.X),
                   reg.promotion_metric, alpha=reg.alpha, samples=reg.bootstrap_samples,
                   seed=reg.bootstrap_seed)


def run_of(version: ModelVersion) -> str:
    """The run a version's model was logged by (every version this framework registers has one)."""
    if not version.run_id:
        raise RegistryError(f"{version.name} version {version.version} has no run: it was not "
                            "registered by this framework")
    return version.run_id


def test_split_of(version: ModelVersion, trained: TrainConfig | None = None) -> Split:
    """The held-out test split a version was scored on (from its run's resolved config;
    `trained`: that config, when the caller has read it already)."""
    from obesity.data.split import split_of

    cfg = trained if trained is not None else tracking.run_config(run_of(version))
    # All raw feature columns: every model's signature selects the ones it was trained on.
    dataset, split = split_of(cfg.data)
    trained_on = version.tags.get("data_md5")
    if trained_on and dataset.md5 != trained_on:
        raise DataError(f"{cfg.data.path} is not the data {version.name} version "
                        f"{version.version} was trained on (md5 {dataset.md5}, the version's "
                        f"data_md5 {trained_on}): restore that file (e.g. `dvc checkout`) to "
                        "score or verify this version")
    extra_on = version.tags.get("data_extra_md5", "")
    if ",".join(split.extra_md5) != extra_on:
        raise DataError(f"the extra labelled files {list(cfg.data.extra)} are not "
                        f"the ones {version.name} version {version.version} was trained on "
                        f"(md5 {','.join(split.extra_md5) or 'none'}, the version's "
                        f"data_extra_md5 {extra_on or 'none'}): restore them (e.g. `dvc "
                        "checkout`) to score or verify this version")
    return split
