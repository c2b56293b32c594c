"""Cross-validation and test-split scoring: metric dicts and the figures people look at
(confusion matrix, per-class precision-recall curves, a reliability plot, permutation importance)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from obesity.config.checks import OBJECTIVES  # noqa: F401  (re-exported)
from obesity.data.contract import CLASSES


@dataclass(frozen=True)
class Scores:
    """Metrics (flat name -> float) and the confusion matrix they came from."""

    metrics: dict[str, float]
    confusion: np.ndarray  # rows: true class, columns: predicted class, in CLASSES order
    predicted: np.ndarray | None = None  # the predictions scored (score() only)
    # score() only: each class's probability, columns in CLASSES order (None: the model has none)
    probabilities: np.ndarray | None = None
    folds: int = 0  # CV folds fitted (cross_validate only)
    stopped: bool = False  # `on_fold` stopped the CV early: metrics of the folds fitted


# `on_fold(fold, running)`: called after each fold with the means over the folds so far (the
# keys of cross_validate's metrics: cv_accuracy_mean, cv_f1_macro_mean); True stops the CV.
FoldCallback = Callable[[int, dict[str, float]], bool]


def cross_validate(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, folds: int, seed: int,
                   n_jobs: int = 1, on_fold: FoldCallback | None = None) -> Scores:
    """Stratified k-fold CV on the training split.

    Per-fold accuracy and macro-F1 (mean and std) plus per-class precision/recall/F1 and the
    confusion matrix of the out-of-fold predictions. Each fold is fit and predicted exactly once.
    With `on_fold` the folds are fitted one after the other (a sweep's pruner decides after each
    one); if it stops the CV, the scores are those of the folds fitted.
    """
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(cv.split(X, y))
    truth = y.to_numpy()
    fold_acc: list[float] = []
    fold_f1: list[float] = []

    def scored(test_idx: np.ndarray) -> dict[str, float]:
        """Score one fold; the means over the folds scored so far."""
        fold_acc.append(accuracy_score(truth[test_idx], predicted[test_idx]))
        fold_f1.append(f1_score(truth[test_idx], predicted[test_idx], average="macro"))
        return {"cv_accuracy_mean": float(np.mean(fold_acc)),
                "cv_f1_macro_mean": float(np.mean(fold_f1))}

    if on_fold is None:
        predicted = cross_val_predict(clone(pipeline), X, y, cv=cv, n_jobs=n_jobs)
        done = splits
        for _, test_idx in done:
            scored(test_idx)
    else:
        predicted = np.empty(len(y), dtype=object)
        done = []
        for fold, (train_idx, test_idx) in enumerate(splits):
            model = clone(pipeline).fit(X.iloc[train_idx], y.iloc[train_idx])
            predicted[test_idx] = model.predict(X.iloc[test_idx])
            done.append((train_idx, test_idx))
            running = scored(test_idx)
            if fold + 1 < folds and on_fold(fold, running):
                break
    metrics = {
        "cv_accuracy_mean": float(np.mean(fold_acc)),
        "cv_accuracy_std": float(np.std(fold_acc)),
        "cv_f1_macro_mean": float(np.mean(fold_f1)),
        "cv_f1_macro_std": float(np.std(fold_f1)),
    }
    seen = np.concatenate([t for _, t in done])
    truth, predicted = truth[seen], predicted[seen].astype(truth.dtype)
    metrics |= per_class(truth, predicted, prefix="cv") | ordinal(truth, predicted, prefix="cv")
    return Scores(metrics, confusion_matrix(truth, predicted, labels=list(CLASSES)),
                  folds=len(done), stopped=len(done) < folds)


def score(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, prefix: str = "test") -> Scores:
    """Accuracy, macro-F1 and per-class scores of a fitted pipeline on one split."""
    truth = y.to_numpy()
    predicted = pipeline.predict(X)
    metrics = {
        f"{prefix}_accuracy": float(accuracy_score(truth, predicted)),
        f"{prefix}_f1_macro": float(f1_score(truth, predicted, average="macro")),
    }
    metrics |= per_class(truth, predicted, prefix=prefix) | ordinal(truth, predicted, prefix=prefix)
    probabilities = None
    if hasattr(pipeline, "predict_proba"):
        probabilities = in_contract_order(pipeline.predict_proba(X), pipeline.classes_)
        metrics |= calibration(truth, predicted, probabilities, prefix)
    return Scores(metrics, confusion_matrix(truth, predicted, labels=list(CLASSES)), predicted,
                  probabilities=probabilities)


def in_contract_order(probabilities: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """A model's probabilities (columns in `classes` order) as one column per contract class, in
    CLASSES order; 0 for a class the model never saw (trained on a file that lacks it)."""
    out = np.zeros((len(probabilities), len(CLASSES)))
    for j, name in enumerate(classes):
        out[:, CLASSES.index(str(name))] = probabilities[:, j]
    return out


def calibration(truth: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray,
                prefix: str, bins: int = 10) -> dict[str, float]:
    """`{prefix}_log_loss` and `{prefix}_ece`: the expected calibration error of the top label
    (the gap between confidence and accuracy, averaged over `bins` equal-width confidence bins
    weighted by their rows; sklearn has the plot, not this number)."""
    confidence = probabilities.max(axis=1)
    correct = (predicted == truth).astype(float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = sum(abs(correct[which == b].mean() - confidence[which == b].mean()) * np.sum(which == b)
              for b in np.unique(which))
    order = np.argsort(CLASSES)  # log_loss reads the columns in sorted label order
    return {f"{prefix}_log_loss": float(log_loss(truth, probabilities[:, order],
                                                 labels=sorted(CLASSES))),
            f"{prefix}_ece": float(gap / len(truth))}


def pr_curves_figure(truth: np.ndarray, probabilities: np.ndarray, title: str):
    """One precision-recall curve per class (one class against the rest), average precision in
    the legend."""
    from sklearn.metrics import PrecisionRecallDisplay

    plt = headless_pyplot()
    fig, ax = plt.subplots(figsize=(8, 6), dpi=100)
    for i, name in enumerate(CLASSES):
        PrecisionRecallDisplay.from_predictions(truth == name, probabilities[:, i], name=name, ax=ax)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return fig


def calibration_figure(truth: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray,
                       title: str, bins: int = 10):
    """The reliability plot of the top label: how often the predicted class is right against
    how sure the model was of it."""
    from sklearn.calibration import CalibrationDisplay

    plt = headless_pyplot()
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    CalibrationDisplay.from_predictions(predicted == truth, probabilities.max(axis=1), n_bins=bins,
                                        name="top label", ax=ax)
    ax.set_xlabel("confidence in the predicted class")
    ax.set_ylabel("share of predictions that are right")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def permutation_importances(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series,
                            seed: int, repeats: int = 5) -> pd.DataFrame:
    """sklearn's permutation importance of each raw column on (X, y) by macro-F1: the mean drop
    and its std over `repeats` shuffles, largest first."""
    from sklearn.inspection import permutation_importance

    # some 80 predictions of a few hundred rows each: an estimator's own threads only add
    # dispatch overhead (and stall on a busy machine), so one thread while it runs
    jobs = {key: value for key, value in pipeline.get_params().items() if key.endswith("n_jobs")}
    pipeline.set_params(**{key: 1 for key in jobs})
    try:
        found = permutation_importance(pipeline, X, y, scoring="f1_macro", n_repeats=repeats,
                                       random_state=seed)
    finally:
        pipeline.set_params(**jobs)
    return pd.DataFrame({"column": list(X.columns), "mean": found.importances_mean,
                         "std": found.importances_std}).sort_values("mean", ascending=False)


def importance_figure(table: pd.DataFrame, title: str):
    plt = headless_pyplot()
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    shown = table.iloc[::-1]
    ax.barh(shown["column"], shown["mean"], xerr=shown["std"])
    ax.set_xlabel("drop in macro-F1 when the column is shuffled")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def per_class(truth: Sequence[str], predicted: Sequence[str], prefix: str) -> dict[str, float]:
    """`{prefix}_{precision|recall|f1}_{class}` for every class of the contract."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, labels=list(CLASSES), zero_division=0
    )
    out: dict[str, float] = {}
    for i, name in enumerate(CLASSES):
        out[f"{prefix}_precision_{name}"] = float(precision[i])
        out[f"{prefix}_recall_{name}"] = float(recall[i])
        out[f"{prefix}_f1_{name}"] = float(f1[i])
    return out


def ordinal(truth: Sequence[str], predicted: Sequence[str], prefix: str) -> dict[str, float]:
    """Scores that know the classes are ordered (Insufficient_Weight < ... < Obesity_Type_III),
    so a miss by one level counts less than a miss by five: `{prefix}_class_distance` (mean
    absolute difference in levels) and `{prefix}_qwk` (quadratic weighted kappa)."""
    level = {name: i for i, name in enumerate(CLASSES)}
    distance = np.abs(np.array([level[t] for t in truth]) - np.array([level[p] for p in predicted]))
    return {f"{prefix}_class_distance": float(distance.mean()),
            f"{prefix}_qwk": float(cohen_kappa_score(truth, predicted, labels=list(CLASSES),
                                                      weights="quadratic"))}


def headless_pyplot():
    """matplotlib's pyplot on its file-only backend (Agg): servers and CI have no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(matrix: np.ndarray, title: str):
    """A labelled confusion-matrix figure (matplotlib, headless)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = headless_pyplot()

    fig, ax = plt.subplots(figsize=(8, 7), dpi=100)
    ConfusionMatrixDisplay(matrix, display_labels=list(CLASSES)).plot(
        ax=ax, xticks_rotation=45, colorbar=False, values_format="d"
    )
    ax.set_title(title)
    fig.tight_layout()
    return fig
