"""Is a candidate better than the champion, or only luckier on these test rows?

Both models' predictions on the SAME test rows are compared paired:
- a seeded paired bootstrap of the difference in the promotion metric (the same resampled rows
  for both models) gives a confidence interval of candidate - champion;
- an exact McNemar test on the rows where exactly one of them is right gives a p-value.
The guard (config `registry.guard`) decides on the interval:
- `better`: its lower bound is above `promotion_margin` (sweeps: an improvement, not noise);
- `not_worse`: its lower bound is above `-tolerance` (a refit on new data: as good, within a
  tolerance);
- `point`: the point estimate beats the champion by more than `promotion_margin` (the old rule,
  kept for comparison).
Pure numpy: unit-tested on simulated predictions (tests/unit/test_evidence.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, assert_never

import numpy as np

from obesity.config.checks import guarded
from obesity.config.schemas import Guard
from obesity.data.contract import CLASSES
from obesity.errors import ConfigError

# One model's scores on labelled rows, as the monitor and `registry evaluate` report them
REPORTED = ("accuracy", "f1_macro", "class_distance", *(f"recall_{c}" for c in CLASSES))


@dataclass(frozen=True)
class Evidence:
    """Candidate minus champion on the same rows, with its uncertainty."""

    metric: str
    diff: float  # point estimate: candidate's metric - champion's metric on all rows
    ci_low: float
    ci_high: float
    alpha: float
    mcnemar_p: float  # exact two-sided, on the rows where exactly one model is right
    only_candidate_right: int
    only_champion_right: int
    rows: int
    samples: int

    def figures(self) -> str:
        """`+0.0024 test_f1_macro (95% CI -0.0061 … +0.0110, McNemar p=0.62)`"""
        level = f"{100 * (1 - self.alpha):g}%"
        return (f"{self.diff:+.4f} {self.metric} ({level} CI {self.ci_low:+.4f} … {self.ci_high:+.4f}, "
                f"McNemar p={self.mcnemar_p:.2g})")

    def tags(self) -> dict[str, str]:
        """The figures as version tags (`guard_*`)."""
        return {"guard_diff": f"{self.diff:.6f}", "guard_ci_low": f"{self.ci_low:.6f}",
                "guard_ci_high": f"{self.ci_high:.6f}", "guard_alpha": f"{self.alpha:g}",
                "guard_mcnemar_p": f"{self.mcnemar_p:.6g}", "guard_rows": str(self.rows)}


def compare(truth: Sequence[Any], candidate: Sequence[Any], champion: Sequence[Any], metric: str,
            alpha: float = 0.05, samples: int = 2000, seed: int = 0) -> Evidence:
    """Paired bootstrap and exact McNemar of `candidate` vs `champion` predictions of `truth`."""
    from scipy.stats import binomtest

    if not guarded(metric):
        raise ConfigError(f"registry.promotion_metric={metric}: the guard compares test_accuracy, "
                          "test_f1_macro or a per-class test_{precision,recall,f1}_<class>")
    index = {name: i for i, name in enumerate(CLASSES)}
    t = np.array([index[v] for v in truth])
    a = np.array([index[v] for v in candidate])
    b = np.array([index[v] for v in champion])
    n = len(t)
    if not n == len(a) == len(b):
        raise ValueError("truth and both predictions must cover the same rows")
    kind = metric.split("_", 1)[-1]
    # Both models' scores are functions of the rows' (truth, candidate, champion) cell counts:
    # resampling rows is drawing those counts from a multinomial over the k**3 cells, each draw
    # one resample for both models (the pairing), in time that does not grow with the rows.
    k = len(CLASSES)
    cells = np.bincount((t * k + a) * k + b, minlength=k**3).astype(float)
    drawn = np.random.default_rng(seed).multinomial(n, cells / n, size=samples)
    joint = np.vstack([cells, drawn]).reshape(samples + 1, k, k, k)
    scores = _from_counts(kind, joint.sum(axis=3)) - _from_counts(kind, joint.sum(axis=2))
    diff, resampled = float(scores[0]), scores[1:]
    low, high = np.quantile(resampled, [alpha / 2, 1 - alpha / 2])
    only_a = int(np.sum((a == t) & (b != t)))
    only_b = int(np.sum((b == t) & (a != t)))
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return Evidence(metric, diff, float(low), float(high), alpha, float(p), only_a, only_b, n, samples)


def intervals(truth: Sequence[Any], predicted: Sequence[Any], kinds: Sequence[str],
              alpha: float = 0.05, samples: int = 2000, seed: int = 0) -> dict[str, tuple[float, float]]:
    """A (1 - alpha) bootstrap interval of each of one model's scores (`kinds`: accuracy,
    f1_macro, f1_<class>, ..., class_distance) on these rows."""
    return {kind: (low, high) for kind, (_, low, high)
            in scored(truth, predicted, kinds, alpha, samples, seed).items()}


def scored(truth: Sequence[Any], predicted: Sequence[Any], kinds: Sequence[str],
           alpha: float = 0.05, samples: int = 2000, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Each score of `kinds` on these rows with its (1 - alpha) bootstrap interval: (point,
    low, high). Every score here is a function of the confusion matrix, so resampling rows is
    drawing the matrix from a multinomial over its cells: the same bootstrap in memory and time
    that do not grow with the rows (100,000 labelled rows cost what 400 do)."""
    k = len(CLASSES)
    index = {name: i for i, name in enumerate(CLASSES)}
    t = np.array([index[v] for v in truth])
    p = np.array([index[v] for v in predicted])
    counts = np.bincount(t * k + p, minlength=k * k).astype(float)
    drawn = np.random.default_rng(seed).multinomial(len(t), counts / counts.sum(), size=samples)
    found = {}
    for kind in kinds:
        point = float(_from_counts(kind, counts.reshape(1, k, k))[0])
        low, high = np.quantile(_from_counts(kind, drawn.reshape(samples, k, k).astype(float)),
                                [alpha / 2, 1 - alpha / 2])
        found[kind] = (point, float(low), float(high))
    return found


def _from_counts(kind: str, confusion: np.ndarray) -> np.ndarray:
    """`kind` of each confusion matrix (samples x true x predicted counts)."""
    k = len(CLASSES)
    total = confusion.sum(axis=(1, 2))
    if kind == "class_distance":  # mean |true level - predicted level|
        distance = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :])
        return (confusion * distance).sum(axis=(1, 2)) / total
    return _counted(kind, np.diagonal(confusion, axis1=1, axis2=2), confusion.sum(axis=2),
                    confusion.sum(axis=1), total)


def _counted(kind: str, tp: np.ndarray, true: np.ndarray, pred: np.ndarray,
             total: np.ndarray) -> np.ndarray:
    """`kind` from per-class counts (samples x classes): right answers, true and predicted rows."""
    if kind == "accuracy":
        return tp.sum(axis=1) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred > 0, tp / pred, 0.0)
        recall = np.where(true > 0, tp / true, 0.0)
        f1 = np.where(pred + true > 0, 2 * tp / (pred + true), 0.0)
    if kind == "f1_macro":  # sklearn's: the mean over the classes present in truth or predictions
        present = (pred + true) > 0
        return (f1 * present).sum(axis=1) / present.sum(axis=1)
    name, cls = kind.split("_", 1)
    return {"precision": precision, "recall": recall, "f1": f1}[name][:, CLASSES.index(cls)]


def too_little(truth: Sequence[Any], min_rows: int, min_per_class: int,
               what: str = "the test split") -> str | None:
    """Why these rows (`what`) are too few to decide anything on (None when they are enough)."""
    counts = Counter(map(str, truth))
    if len(truth) < min_rows:
        return f"{what} has {len(truth)} row(s) (registry.min_test_rows={min_rows})"
    if len(counts) < 2:
        return f"{what} holds one class only ({next(iter(counts), 'none')})"
    name, least = min(counts.items(), key=lambda item: (item[1], item[0]))
    if least < min_per_class:
        return (f"class {name!r} has {least} row(s) in {what} "
                f"(registry.min_test_rows_per_class={min_per_class})")
    return None


@dataclass(frozen=True)
class Verdict:
    promote: bool
    why: str


def judge(evidence: Evidence, guard: Guard, margin: float, tolerance: float,
          alias: str = "champion", version: str = "?") -> Verdict:
    """The guard's decision on `evidence` against `alias` (now at `version`), saying why."""
    figures = evidence.figures()
    match guard:
        case Guard.better:
            ok, bar = evidence.ci_low > margin, f"lower bound > margin {margin:g}"
        case Guard.not_worse:
            ok, bar = evidence.ci_low > -tolerance, f"lower bound > -tolerance {tolerance:g}"
        case Guard.point:
            ok, bar = evidence.diff > margin, f"point estimate > margin {margin:g}"
        case _:
            assert_never(guard)
    if ok:
        return Verdict(True, f"candidate {figures} over version {version}: enough evidence "
                             f"({bar}, guard={guard})")
    return Verdict(False, f"{alias} stays version {version}: candidate {figures}: not enough "
                          f"evidence (needs {bar}, guard={guard})")
