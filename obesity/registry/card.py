"""A model card for every registered version (skops.card), kept with the version.

Written at registration, after the guard decided: the card is the artifact `card/README.md` (with
its confusion matrix, reliability plot and permutation importance of the test split) of the
version's run, and the version's tag `card` names it.
`python -m obesity.registry card V` prints it; the service links it from `GET /model`.
Its metrics are read from what the version's run logged (tests/integration/test_registry.py
checks); its figures and the permutation importance (also `card/permutation_importance_test.csv`)
are the run's own when it logged them (the same model on the same test split), else made on the
version's test split when the card is written.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from obesity.config.compose import command_line
from obesity.config.schemas import TrainConfig, feature_columns
from obesity.data.contract import CLASSES, FEATURES, Numeric
from obesity.data.split import Split
from obesity.registry.evidence import intervals
from obesity.stores import tracking

log = logging.getLogger(__name__)
ARTIFACT_DIR = "card"
ARTIFACT = f"{ARTIFACT_DIR}/README.md"
TAG = "card"  # version tag: the card's artifact path in the version's run
IMPORTANCE = "permutation_importance_test.csv"
OVERALL = ("test_accuracy", "test_f1_macro", "test_qwk", "test_class_distance")

INTENDED_USE = (
    "Screening and education: an estimate of a person's obesity level (7 ordered classes) from "
    "eating habits, physical condition and body measures, to start a conversation or teach "
    "what the data shows. Not a diagnosis and not a basis for treatment: obesity is diagnosed by "
    "a clinician, and this model only reproduces the labels of one survey-based data set.")
DATA = (
    "UCI Machine Learning Repository, *Estimation of obesity levels based on eating habits and "
    "physical condition* (dataset 544, CC BY 4.0): people aged 14 to 61 from Mexico, Peru and "
    "Colombia. Its authors generated 77% of the rows synthetically with SMOTE from the survey's "
    "own rows; a random train/test split therefore puts near-copies of training rows in the test "
    "split, and every score here is flattered by it.")
HONEST = (
    "How well this version fits this file, not how well it will do for new people: the test "
    "split holds near-copies of training rows, and on labelled people of another population a "
    "champion with 0.98 here scored far lower. The figures that answer that question come from "
    "new labels: `python -m obesity.registry evaluate V data.path=<labelled file>` and the "
    "monitor's realized performance on the service's labelled answers; `python -m "
    "obesity.registry card V` prints them under *Since registration*.")
LIMITATIONS = (
    "The labels were assigned from BMI (Weight / Height²) thresholds, so Height and Weight nearly "
    "decide them: the BMI rule alone (model=bmi_rule, no learning) is the baseline every score "
    "must beat. Train with `data=lifestyle` (no Height or Weight) to see what habits alone "
    "predict. The population is narrow (three countries, ages 14-61, an online survey); the "
    "model is not validated on anyone else.")


def write(client: MlflowClient, cfg: TrainConfig, version: ModelVersion, model: Any, split: Split,
          why: str) -> str:
    """Build the card of `version` (its fitted `model`, the test `split` it was scored on, the
    guard's `why`), log it to the version's run and tag the version. Returns the artifact path."""
    from sklearn.metrics import confusion_matrix
    from skops.card import Card

    from obesity.model import evaluate

    plt = evaluate.headless_pyplot()

    reg = cfg.registry
    run = client.get_run(version.run_id or "")
    metrics, params = run.data.metrics, run.data.params
    predicted = model.predict(split.X_test)
    kinds = ["accuracy", "f1_macro", *(f"f1_{c}" for c in CLASSES)]
    bounds = intervals(split.y_test, predicted, kinds, alpha=reg.alpha,
                       samples=reg.bootstrap_samples, seed=reg.bootstrap_seed)
    level = f"{100 * (1 - reg.alpha):g}%"
    tags = version.tags

    card = Card(model, model_diagram=False, template=None)
    card.add(**{
        "Model": (f"`{version.name}` version {version.version}: `{tags.get('model', '?')}` on "
                  f"`{tags.get('data', '?')}` data (run `{version.run_id}`, git "
                  f"`{tags.get('git_commit', '?')}`). Raw columns in, class name out."),
        "Intended use": INTENDED_USE,
        "Data": (f"{DATA}\n\nThis version: data md5 `{tags.get('data_md5', '?')}`, "
                 f"{params.get('data.rows_raw', '?')} rows, {params.get('data.rows_dedup', '?')} "
                 f"after dropping exact duplicates; {params.get('data.rows_train', '?')} train, "
                 f"{params.get('data.rows_test', '?')} test (split `{tags.get('split', '?')}`)."),
    })
    saved = tracking.run_config(version.run_id or "")  # the run's resolved config
    card.add_table(**{"Input columns": _columns(feature_columns(saved.data))})
    card.add_metrics(
        section="Test metrics",
        description=(f"On the held-out test split ({len(split.y_test)} rows), scored once at "
                     f"registration; {level} bootstrap intervals ({reg.bootstrap_samples} samples)."
                     f" The BMI rule on the same rows: {_baseline(tags, reg.promotion_metric)}."),
        **{name: f"{metrics[name]:.4f}" for name in OVERALL if name in metrics})
    if "fresh_accuracy" in metrics:  # trained with labelled extra files: their held-out rows
        card.add_metrics(
            section="Fresh labelled rows",
            description=(f"On the {params.get('data.rows_fresh', '?')} rows held out of the extra "
                         f"labelled files (md5 {tags.get('data_extra_md5', '?')}): new people no "
                         "model trained on, the rows the guard decided on."),
            **{name: f"{metrics[name]:.4f}" for name in
               ("fresh_accuracy", "fresh_f1_macro", "fresh_qwk", "fresh_class_distance")
               if name in metrics})
    card.add(**{"What the test figure means": HONEST})
    card.add_table(**{"Per class (test)": _per_class(metrics, bounds, level)})
    card.add_table(**{f"Intervals ({level}, test)": pd.DataFrame(
        [{"metric": f"test_{kind}", "value": f"{metrics[f'test_{kind}']:.4f}",
          "low": f"{low:.4f}", "high": f"{high:.4f}"}
         for kind, (low, high) in bounds.items() if kind in ("accuracy", "f1_macro")])})
    card.add(**{
        "Promotion": (f"{why}\n\nGuard `{reg.guard}` on `{reg.promotion_metric}`; validation "
                      f"status `{tags.get('validation_status', '?')}` (threshold "
                      f"{reg.promotion_threshold})."),
        "Reproduce": f"```bash\n{command_line(saved, portable=True)}\n```",
        "ONNX twin": (f"`{tags.get('onnx', 'none')}` (max |p_onnx - p_sklearn| "
                      f"{tags.get('onnx_max_prob_diff', '-')} on {tags.get('onnx_rows_checked', '-')} "
                      "test rows)"),
        "Limitations": LIMITATIONS,
    })
    what = f"{version.name} v{version.version}"
    truth = split.y_test.to_numpy()
    run_id = version.run_id or ""
    logged = {a.path for a in client.list_artifacts(run_id)}  # the version's run's own files
    with tempfile.TemporaryDirectory() as tmp:
        if IMPORTANCE in logged:  # the run computed it (log_importance): the same model and rows
            importance = pd.read_csv(client.download_artifacts(run_id, IMPORTANCE, tmp))
        else:
            importance = evaluate.permutation_importances(model, split.X_test, split.y_test,
                                                          seed=cfg.seed)
            importance.to_csv(Path(tmp, IMPORTANCE), index=False)
        card.add_table(**{"Permutation importance (test)": importance.round(4)})
        figures: dict[str, tuple[str, Any]] = {  # section -> (file, how to draw it if need be)
            "Confusion matrix (test)": ("confusion_matrix_test.png", lambda: evaluate.confusion_figure(
                confusion_matrix(truth, predicted, labels=list(CLASSES)), f"{what}: test split")),
            "Reliability (test)": ("calibration_test.png", lambda: evaluate.calibration_figure(
                truth, predicted,
                evaluate.in_contract_order(model.predict_proba(split.X_test), model.classes_),
                f"{what}: reliability (test split)")),
            "Permutation importance plot (test)": ("permutation_importance_test.png",
                                                   lambda: evaluate.importance_figure(
                                                       importance, f"{what}: permutation importance")),
        }
        if not hasattr(model, "predict_proba"):
            del figures["Reliability (test)"]
        for section, (name, draw) in figures.items():
            if name in logged:  # the run's figure of the same model on the same rows: copied
                client.download_artifacts(run_id, name, tmp)
            else:
                figure = draw()
                figure.savefig(Path(tmp, name), dpi=80)
                plt.close(figure)
            card.add_plot(**{section: name})
        card.save(Path(tmp, "README.md"))
        client.log_artifacts(version.run_id or "", tmp, ARTIFACT_DIR)
    client.set_model_version_tag(version.name, version.version, TAG, ARTIFACT)
    return ARTIFACT


def _columns(names: list[str]) -> pd.DataFrame:
    """The model's input columns with the values the contract accepts."""
    rows = []
    for column in (c for c in FEATURES if c.name in names):
        allowed = (f"{column.low:g} to {column.high:g}" if isinstance(column, Numeric)
                   else ", ".join(column.levels))
        rows.append({"column": column.name, "values": allowed})
    return pd.DataFrame(rows)


def _per_class(metrics: dict[str, float], bounds: dict[str, tuple[float, float]],
               level: str) -> pd.DataFrame:
    return pd.DataFrame([
        {"class": name,
         "precision": f"{metrics[f'test_precision_{name}']:.4f}",
         "recall": f"{metrics[f'test_recall_{name}']:.4f}",
         "f1": f"{metrics[f'test_f1_{name}']:.4f}",
         f"f1 {level} interval": "{:.4f} … {:.4f}".format(*bounds[f"f1_{name}"])}
        for name in CLASSES])


def _baseline(tags: dict[str, str], metric: str) -> str:
    if f"baseline_{metric}" not in tags:
        return "not measured"
    return (f"{metric} {float(tags[f'baseline_{metric}']):.4f}; this version's margin over it "
            f"{float(tags['margin_over_baseline']):+.4f}")


def since_registration(tags: dict[str, str]) -> str:
    """What was learnt about the version after its card was written (and signed): its scores on
    other labelled files and on the labels of its own traffic, from its tags."""
    lines = []
    if "evaluated" in tags:
        lines.append(f"- {tags['evaluated']} (MLflow run "
                     f"`{tags.get('evaluated_run_id', '?')}`, {tags.get('evaluated_at', '?')})")
    if "performance_status" in tags:
        lines.append(f"- its served answers, labelled later: `{tags['performance_status']}`, "
                     f"accuracy {tags.get('realized_accuracy', '-')}, macro-F1 "
                     f"{tags.get('realized_f1_macro', '-')} on {tags.get('realized_rows', '0')} "
                     f"labelled rows ({tags.get('performance_checked_at', '?')})")
    if not lines:
        return ""
    return ("\n\n## Since registration\n\nNot part of the signed card: read from the "
            "version's tags when this was printed.\n\n" + "\n".join(lines) + "\n")


def read(client: MlflowClient, version: ModelVersion) -> str:
    """The card's text (RegistryError when the version has none; ModelRefused when its tag
    names a file outside the version's run artifacts)."""
    from obesity.errors import RegistryError
    from obesity.model import files

    if TAG not in version.tags:
        raise RegistryError(f"{version.name} version {version.version} has no model card "
                            "(registered before cards existed)")
    with tempfile.TemporaryDirectory(prefix="obesity-card-") as tmp:
        path = files.run_file(version.run_id or "", version.tags[TAG], Path(tmp),
                              f"{version.name} version {version.version}'s card")
        return path.read_text(encoding="utf-8", errors="replace")
