"""The BMI rule (model=bmi_rule) and the order-aware scores, on the real data."""

from __future__ import annotations

import numpy as np
import pytest

from obesity.data.contract import CLASSES
from obesity.errors import ConfigError
from obesity.model import evaluate, pipeline
from tests.helpers import compose_train


def test_the_rule_applies_the_label_thresholds_at_their_edges():
    import pandas as pd

    from obesity.model.baseline import rule_pipeline

    bmi = [18.49, 18.5, 24.99, 25.0, 26.99, 27.0, 29.99, 30.0, 34.99, 35.0, 39.99, 40.0]
    X = pd.DataFrame({"Height": [1.0] * len(bmi), "Weight": bmi})  # BMI = Weight at 1 m
    expected = [CLASSES[0], *[CLASSES[i] for i in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6)]]
    assert list(rule_pipeline().fit(X).predict(X)) == expected


def test_bmi_rule_without_height_and_weight_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"model=bmi_rule needs Height, Weight"):
        pipeline.build(compose_train(["model=bmi_rule", "data=lifestyle"], tmp_path))


def test_order_aware_scores_tell_a_near_miss_from_a_far_one():
    truth = np.array([CLASSES[3]] * 10)
    near = truth.copy()
    near[0] = CLASSES[4]  # one level off
    far = truth.copy()
    far[0] = CLASSES[0]  # three levels off
    n, f = evaluate.ordinal(truth, near, "test"), evaluate.ordinal(truth, far, "test")
    assert n["test_class_distance"] == pytest.approx(0.1) and f["test_class_distance"] == pytest.approx(0.3)
    both = np.array([CLASSES[0], CLASSES[3], CLASSES[6]] * 4)
    assert evaluate.ordinal(both, both, "test")["test_qwk"] == pytest.approx(1.0)
    swapped = np.array([CLASSES[6], CLASSES[3], CLASSES[0]] * 4)
    assert evaluate.ordinal(both, swapped, "test")["test_qwk"] < 0
