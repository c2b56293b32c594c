"""The data contract of the UCI obesity data set (dataset 544): columns, types, levels, ranges.

Ranges are the plausible human ranges, wider than what the file holds, so that a new file of the
same schema passes while a unit error (height in cm, weight in g) or a typo is caught.
"""

from __future__ import annotations

from dataclasses import dataclass

TARGET = "NObeyesdad"


@dataclass(frozen=True)
class Numeric:
    """A numeric column with an inclusive plausible range."""

    name: str
    low: float
    high: float
    description: str = ""


@dataclass(frozen=True)
class Categorical:
    """A text column that must take one of the declared levels."""

    name: str
    levels: tuple[str, ...]
    description: str = ""


Column = Numeric | Categorical

YES_NO = ("no", "yes")
FREQUENCY = ("no", "Sometimes", "Frequently", "Always")

FEATURES: tuple[Column, ...] = (
    Categorical("Gender", ("Female", "Male")),
    Numeric("Age", 10, 100, "years"),
    Numeric("Height", 1.0, 2.5, "metres"),
    Numeric("Weight", 20, 300, "kilograms"),
    Categorical("family_history_with_overweight", YES_NO),
    Categorical("FAVC", YES_NO, "frequent consumption of high-caloric food"),
    Numeric("FCVC", 1, 3, "frequency of vegetable consumption"),
    Numeric("NCP", 1, 4, "number of main meals"),
    Categorical("CAEC", FREQUENCY, "eating between meals"),
    Categorical("SMOKE", YES_NO),
    Numeric("CH2O", 1, 3, "daily water intake"),
    Categorical("SCC", YES_NO, "calorie consumption monitoring"),
    Numeric("FAF", 0, 3, "physical activity frequency"),
    Numeric("TUE", 0, 2, "time using technology devices"),
    Categorical("CALC", FREQUENCY, "alcohol consumption"),
    Categorical(
        "MTRANS", ("Automobile", "Bike", "Motorbike", "Public_Transportation", "Walking")
    ),
)

LABEL = Categorical(
    TARGET,
    (
        "Insufficient_Weight",
        "Normal_Weight",
        "Overweight_Level_I",
        "Overweight_Level_II",
        "Obesity_Type_I",
        "Obesity_Type_II",
        "Obesity_Type_III",
    ),
)

COLUMNS: tuple[Column, ...] = (*FEATURES, LABEL)
FEATURE_NAMES: tuple[str, ...] = tuple(c.name for c in FEATURES)
NUMERIC_FEATURES: tuple[str, ...] = tuple(c.name for c in FEATURES if isinstance(c, Numeric))
CLASSES: tuple[str, ...] = LABEL.levels


def column(name: str) -> Column:
    """The contract of one column by name."""
    for col in COLUMNS:
        if col.name == name:
            return col
    raise KeyError(name)
