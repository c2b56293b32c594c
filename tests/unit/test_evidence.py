"""The guard's rule itself, on simulated predictions: how often it promotes a candidate that is
no better (must be rare) and one that truly is (must be common). Rates are printed (-s)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from obesity.data.contract import CLASSES
from obesity.registry.evidence import compare, judge

ROWS = 418  # the test split of this data
SETS = 500  # simulated test sets per scenario
ALPHA = 0.05


def wrong_on(truth: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`truth` with `rows` replaced by another class."""
    predicted = truth.copy()
    shift = rng.integers(1, len(CLASSES), size=rows.sum())
    predicted[rows] = (truth[rows] + shift) % len(CLASSES)
    return predicted


def promotion_rates(scenario) -> dict[str, float]:
    """How often each guard promotes the candidate over SETS simulated test sets."""
    rng = np.random.default_rng(7)
    names = np.array(CLASSES)
    promoted = dict.fromkeys(("better", "point"), 0)
    for i in range(SETS):
        truth = rng.integers(0, len(CLASSES), size=ROWS)
        candidate, champion = scenario(truth, rng)
        evidence = compare(names[truth], names[candidate], names[champion], "test_f1_macro",
                           alpha=ALPHA, samples=500, seed=i)
        for guard in promoted:
            promoted[guard] += judge(evidence, guard, margin=0.0, tolerance=0.01).promote
    return {guard: count / SETS for guard, count in promoted.items()}


def equally_good(truth, rng):
    """Each wrong on its own random 3% of the rows."""
    return (wrong_on(truth, rng.random(ROWS) < 0.03, rng),
            wrong_on(truth, rng.random(ROWS) < 0.03, rng))


def three_points_better_shared_errors(truth, rng):
    """The champion is wrong where the candidate is (3%, the hard rows) and on 3% more."""
    hard = rng.random(ROWS) < 0.03
    extra = ~hard & (rng.random(ROWS) < 0.03 / 0.97)
    return wrong_on(truth, hard, rng), wrong_on(truth, hard | extra, rng)


def three_points_better_independent_errors(truth, rng):
    """Candidate wrong on its own random 3%, champion on its own random 6%."""
    return (wrong_on(truth, rng.random(ROWS) < 0.03, rng),
            wrong_on(truth, rng.random(ROWS) < 0.06, rng))


def test_a_candidate_no_better_is_rarely_promoted():
    rates = promotion_rates(equally_good)
    print(f"\nequal true accuracy (3% vs 3% wrong), {SETS} sets: guard=better promotes "
          f"{rates['better']:.3f}, guard=point (the old rule) {rates['point']:.3f}")
    assert rates["better"] <= ALPHA + 0.02
    assert rates["point"] > 0.3  # the old rule moves the champion on noise about half the time


def test_a_candidate_three_points_better_is_usually_promoted():
    shared = promotion_rates(three_points_better_shared_errors)["better"]
    independent = promotion_rates(three_points_better_independent_errors)["better"]
    print(f"\n3 points better, errors shared (champion wrong where the candidate is): {shared:.3f}"
          f"\n3 points better, errors independent (3% vs 6%): {independent:.3f}")
    assert shared >= 0.8
    # 418 rows cannot tell 3% from 6% independent errors apart reliably: the bound is honest
    assert 0.3 < independent < shared


def test_the_interval_and_the_point_estimate_match_sklearn_on_the_same_rows():
    rng = np.random.default_rng(3)
    names = np.array(CLASSES)
    truth = rng.integers(0, len(CLASSES), size=ROWS)
    a, b = three_points_better_independent_errors(truth, rng)
    evidence = compare(names[truth], names[a], names[b], "test_f1_macro", samples=2000, seed=1)
    expected = (f1_score(names[truth], names[a], average="macro")
                - f1_score(names[truth], names[b], average="macro"))
    assert evidence.diff == pytest.approx(expected, abs=1e-12)
    assert evidence.ci_low < evidence.diff < evidence.ci_high
    assert evidence.only_candidate_right == int(((a == truth) & (b != truth)).sum())
    again = compare(names[truth], names[a], names[b], "test_f1_macro", samples=2000, seed=1)
    assert again == evidence  # seeded: the same decision every time


def test_one_models_scores_and_intervals_from_the_confusion_matrix():
    """`scored` (what the monitor and `registry evaluate` report): the point values are
    sklearn's, and drawing the confusion matrix from a multinomial gives the row bootstrap's
    interval (for accuracy, close to the normal approximation), in time that does not grow
    with the rows."""
    from sklearn.metrics import accuracy_score, recall_score

    from obesity.model.evaluate import ordinal
    from obesity.registry.evidence import scored

    rng = np.random.default_rng(3)
    names = np.array(CLASSES)
    truth = rng.integers(0, len(CLASSES), 4000)
    predicted = names[wrong_on(truth, rng.random(4000) < 0.3, rng)]
    truth = names[truth]
    found = scored(truth, predicted, ["accuracy", "f1_macro", "class_distance",
                                      "recall_Normal_Weight"], samples=4000)
    assert found["accuracy"][0] == pytest.approx(accuracy_score(truth, predicted))
    assert found["f1_macro"][0] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert found["class_distance"][0] == pytest.approx(
        ordinal(truth, predicted, "x")["x_class_distance"])
    assert found["recall_Normal_Weight"][0] == pytest.approx(
        recall_score(truth, predicted, labels=["Normal_Weight"], average="macro"))
    p = found["accuracy"][0]
    half = 1.96 * np.sqrt(p * (1 - p) / 4000)
    low, high = found["accuracy"][1:]
    assert low < p < high and (high - low) / 2 == pytest.approx(half, rel=0.1)
