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
Pure numpy: unit-tested on simulated predictions (tests/test_evidence.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from obesity.config.checks import GUARDS, guarded
from obesity.data.contract import CLASSES
from obesity.errors import ConfigError


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
    weights = _weights(n, samples, seed)  # one matrix for both models: the pairing
    every = np.ones((1, n))
    resampled = _metric(kind, weights, t, a) - _metric(kind, weights, t, b)
    diff = float(_metric(kind, every, t, a)[0] - _metric(kind, every, t, b)[0])
    low, high = np.quantile(resampled, [alpha / 2, 1 - alpha / 2])
    only_a = int(np.sum((a == t) & (b != t)))
    only_b = int(np.sum((b == t) & (a != t)))
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return Evidence(metric, diff, float(low), float(high), alpha, float(p), only_a, only_b, n, samples)


def intervals(truth: Sequence[Any], predicted: Sequence[Any], kinds: Sequence[str],
              alpha: float = 0.05, samples: int = 2000, seed: int = 0) -> dict[str, tuple[float, float]]:
    """A (1 - alpha) bootstrap interval of each of one model's scores (`kinds`: accuracy,
    f1_macro, f1_<class>, ...) on these rows."""
    index = {name: i for i, name in enumerate(CLASSES)}
    t = np.array([index[v] for v in truth])
    p = np.array([index[v] for v in predicted])
    weights = _weights(len(t), samples, seed)
    found = {}
    for kind in kinds:
        low, high = np.quantile(_metric(kind, weights, t, p), [alpha / 2, 1 - alpha / 2])
        found[kind] = (float(low), float(high))
    return found


def _weights(n: int, samples: int, seed: int) -> np.ndarray:
    """Each bootstrap sample as row weights (how often each of the n rows was drawn)."""
    drawn = np.random.default_rng(seed).integers(0, n, size=(samples, n))
    return np.bincount((np.arange(samples)[:, None] * n + drawn).ravel(),
                       minlength=samples * n).reshape(samples, n).astype(float)


def _metric(kind: str, weights: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """`kind` under each row of `weights` (samples x rows), from weighted per-class counts."""
    k = len(CLASSES)
    true_1hot, pred_1hot = np.eye(k)[truth], np.eye(k)[predicted]
    tp = weights @ (true_1hot * (truth == predicted)[:, None])
    true, pred = weights @ true_1hot, weights @ pred_1hot
    if kind == "accuracy":
        return tp.sum(axis=1) / weights.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred > 0, tp / pred, 0.0)
        recall = np.where(true > 0, tp / true, 0.0)
        f1 = np.where(pred + true > 0, 2 * tp / (pred + true), 0.0)
    if kind == "f1_macro":  # sklearn's: the mean over the classes present in truth or predictions
        present = (pred + true) > 0
        return (f1 * present).sum(axis=1) / present.sum(axis=1)
    name, cls = kind.split("_", 1)
    return {"precision": precision, "recall": recall, "f1": f1}[name][:, CLASSES.index(cls)]


def too_little(truth: Sequence[Any], min_rows: int, min_per_class: int) -> str | None:
    """Why these test rows are too few to decide anything on (None when they are enough)."""
    counts = Counter(map(str, truth))
    if len(truth) < min_rows:
        return f"the test split has {len(truth)} row(s) (registry.min_test_rows={min_rows})"
    if len(counts) < 2:
        return f"the test split holds one class only ({next(iter(counts), 'none')})"
    name, least = min(counts.items(), key=lambda item: (item[1], item[0]))
    if least < min_per_class:
        return (f"class {name!r} has {least} row(s) in the test split "
                f"(registry.min_test_rows_per_class={min_per_class})")
    return None


@dataclass(frozen=True)
class Verdict:
    promote: bool
    why: str


def judge(evidence: Evidence, guard: str, margin: float, tolerance: float,
          alias: str = "champion", version: str = "?") -> Verdict:
    """The guard's decision on `evidence` against `alias` (now at `version`), saying why."""
    figures = evidence.figures()
    if guard == "better":
        ok, bar = evidence.ci_low > margin, f"lower bound > margin {margin:g}"
    elif guard == "not_worse":
        ok, bar = evidence.ci_low > -tolerance, f"lower bound > -tolerance {tolerance:g}"
    elif guard == "point":
        ok, bar = evidence.diff > margin, f"point estimate > margin {margin:g}"
    else:
        raise ConfigError(f"registry.guard={guard}: one of {', '.join(GUARDS)}")
    if ok:
        return Verdict(True, f"candidate {figures} over version {version}: enough evidence "
                             f"({bar}, guard={guard})")
    return Verdict(False, f"{alias} stays version {version}: candidate {figures}: not enough "
                          f"evidence (needs {bar}, guard={guard})")
