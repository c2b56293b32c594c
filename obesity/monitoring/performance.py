"""Realized performance: each served version scored on the labels that came back for its
answers, beside what its test split promised.

The served answer (the logged `prediction`) is scored, not a new prediction: it is what the
users got. A version is `degraded` when, for accuracy or macro-F1, the upper bound of the
bootstrap interval on its labelled rows lies below its test-split estimate minus
`monitor.margin`: significantly worse than promised, not merely unlucky. Fewer than
`monitor.min_labels` labelled rows is `insufficient` (no verdict).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from obesity.config.schemas import RegistryConfig
from obesity.data.contract import CLASSES
from obesity.registry.evidence import REPORTED

JUDGED = ("accuracy", "f1_macro")  # a version is degraded when one of these is


@dataclass
class Realized:
    version: str
    rows: int
    status: str  # ok | degraded | insufficient
    # kind -> {"value", "low", "high", "estimate"} (estimate: the test split's, None if unknown)
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    qwk: float | None = None
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "rows": self.rows, "status": self.status,
                "scores": self.scores, "qwk": self.qwk, "why": self.why}


def judge(version: str, truth: Any, served: Any, estimates: dict[str, float], min_labels: int,
          margin: float, alpha: float, samples: int, seed: int) -> Realized:
    """`served` answers against `truth` for one version, judged against its `estimates`
    (`test_<kind>` metrics of its run)."""
    from sklearn.metrics import cohen_kappa_score

    from obesity.registry.evidence import scored

    rows = len(truth)
    if rows < min_labels:
        return Realized(version, rows, "insufficient",
                        why=f"{rows} labelled row(s), monitor.min_labels={min_labels}")
    found = scored(list(truth), list(served), REPORTED, alpha=alpha, samples=samples, seed=seed)
    scores: dict[str, dict[str, float | None]] = {
        kind: {"value": value, "low": low, "high": high,
               "estimate": estimates.get(f"test_{kind}")}
        for kind, (value, low, high) in found.items()}
    qwk = float(cohen_kappa_score(truth, served, labels=list(CLASSES), weights="quadratic"))
    below = [kind for kind in JUDGED if scores[kind]["estimate"] is not None
             and scores[kind]["high"] < scores[kind]["estimate"] - margin]  # type: ignore[operator]
    level = f"{100 * (1 - alpha):g}%"
    said = "; ".join(f"{kind} {s['value']:.3f} ({level} CI {s['low']:.3f}-{s['high']:.3f}) vs "
                     f"test split {s['estimate']:.3f}" if s["estimate"] is not None
                     else f"{kind} {s['value']:.3f}" for kind in JUDGED for s in [scores[kind]])
    if below:
        why = (f"{', '.join(below)} significantly below the test-split estimate minus "
               f"monitor.margin={margin:g}: {said} on {rows} labelled rows")
        return Realized(version, rows, "degraded", scores, qwk, why)
    return Realized(version, rows, "ok", scores, qwk, f"{said} on {rows} labelled rows")


def realized(frame: Any, estimates_of: Any, m: Any, reg: RegistryConfig) -> dict[str, Realized]:
    """Each version with labelled rows in `frame` (labelled_rows()), judged; `estimates_of(v)`:
    version v's test-split metrics."""
    found = {}
    for version, rows in frame.groupby("model_version", sort=False):
        version = str(version)
        found[version] = judge(version, rows["label"].to_numpy(), rows["prediction"].to_numpy(),
                               estimates_of(version), m.min_labels, m.margin, reg.alpha,
                               reg.bootstrap_samples, reg.bootstrap_seed)
    return dict(sorted(found.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0))


REPORT = "performance.html"
# Evidently's report draws the last rows only: its preset's time grows with the rows, and a
# picture of the last few thousand answers says what all of them would (the verdict uses every row)
REPORT_ROWS = 5000


def save_report(reference: Any, current: Any, path: Any) -> None:
    """Evidently's ClassificationPreset: `current` (the labelled answers: `label`,
    `prediction`) against `reference` (the version's test split and its answers there)."""
    from obesity.environment import quiet_libraries

    quiet_libraries()  # before Evidently is imported
    from evidently import DataDefinition, Dataset, Report
    from evidently.core.datasets import MulticlassClassification
    from evidently.presets import ClassificationPreset

    definition = DataDefinition(
        classification=[MulticlassClassification(target="label", prediction_labels="prediction")],
        categorical_columns=["label", "prediction"])

    def data(frame: Any) -> Any:
        return Dataset.from_pandas(frame[["label", "prediction"]].tail(REPORT_ROWS)
                                   .reset_index(drop=True).astype(str), data_definition=definition)

    Report([ClassificationPreset()]).run(data(current), data(reference)).save_html(str(path))
