"""Labelled people made from the real file for cases the file lacks."""

from __future__ import annotations

from tests.helpers.paths import RAW_CSV


def other_population(rows: int, seed: int):
    """Labelled people the project has never seen, made from the real file: 25 years older,
    weights moved by up to 8%, and labelled by lower BMI cut-offs (18.5, 23, 25, 27.5, 32.5,
    37.5: those some countries use for Asian populations) than the data's (18.5, 25, 27, 30, 35,
    40). A model of the original labels disagrees with a good share of them; a model that
    learns from some of them can learn their rule."""
    import numpy as np
    import pandas as pd

    from obesity.data.contract import CLASSES

    rng = np.random.default_rng(seed)
    people = pd.read_csv(RAW_CSV).sample(rows, replace=True, random_state=seed)
    people = people.reset_index(drop=True)
    people["Age"] = (people["Age"] + 25).clip(upper=100).round(1)
    people["Weight"] = (people["Weight"] * rng.uniform(0.92, 1.08, rows)).clip(20, 300).round(1)
    bmi = people["Weight"] / people["Height"] ** 2
    cuts = [18.5, 23, 25, 27.5, 32.5, 37.5]
    people["NObeyesdad"] = np.array(CLASSES)[np.searchsorted(cuts, bmi, side="right")]
    return people


def as_json(frame) -> list[dict]:
    """Rows of a frame as the JSON objects a client sends."""
    import json

    return json.loads(frame.to_json(orient="records"))
