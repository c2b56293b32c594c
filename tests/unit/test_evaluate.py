"""The calibration figures' numbers on rows whose answer is known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from obesity.data.contract import CLASSES
from obesity.model.evaluate import calibration, in_contract_order

TRUE = CLASSES.index("Overweight_Level_I")


def rows(top: list[float], right: list[bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth is always Overweight_Level_I (third in the contract, sixth in sorted order: a column
    mix-up shows); each row puts `top` on it when `right`, else on Overweight_Level_II, and
    spreads the rest evenly."""
    probabilities = np.zeros((len(top), len(CLASSES)))
    for i, (p, ok) in enumerate(zip(top, right, strict=True)):
        probabilities[i] = (1 - p) / (len(CLASSES) - 1)
        probabilities[i, TRUE if ok else TRUE + 1] = p
    truth = np.array([CLASSES[TRUE]] * len(top))
    predicted = np.array([CLASSES[TRUE if ok else TRUE + 1] for ok in right])
    return truth, predicted, probabilities


@pytest.mark.parametrize(("top", "right", "ece"), [
    ([0.9] * 10, [True] * 5 + [False] * 5, 0.4),  # sure of every row, right on half
    ([0.95] * 5 + [0.55] * 5, [True] * 10, (5 * 0.05 + 5 * 0.45) / 10),  # two bins, right always
    ([0.75] * 4, [True, True, True, False], 0.0),  # as sure as it is right
])
def test_ece_is_the_row_weighted_gap_between_confidence_and_accuracy(top, right, ece):
    truth, predicted, probabilities = rows(top, right)
    found = calibration(truth, predicted, probabilities, "test")
    assert found["test_ece"] == pytest.approx(ece)
    # the loss is the mean -log of the true class's probability
    assert found["test_log_loss"] == pytest.approx(-np.log(probabilities[:, TRUE]).mean())


def test_a_model_that_never_saw_a_class_gives_it_probability_zero():
    """A model trained on a file with two classes (sklearn's classes_ sorted): its columns land
    on those classes' contract columns, every other class is 0."""
    found = np.array([[0.2, 0.8], [0.7, 0.3]])
    placed = in_contract_order(found, ["Obesity_Type_I", "Normal_Weight"])
    assert placed.shape == (2, len(CLASSES))
    np.testing.assert_array_equal(placed[:, CLASSES.index("Obesity_Type_I")], [0.2, 0.7])
    np.testing.assert_array_equal(placed[:, CLASSES.index("Normal_Weight")], [0.8, 0.3])
    assert placed.sum() == pytest.approx(2.0)
