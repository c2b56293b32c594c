"""The data contract of the UCI obesity data set (dataset 544): columns, types, levels, ranges.

Ranges are the plausible human ranges, wider than what the file holds, so that a new file of the
same schema passes while a unit error (height in cm, weight in g) or a typo is caught. The words
(`description`, `scale`) are the survey's questions and answer codes (Palechor & de la Hoz
Manotas, 2019): the service's OpenAPI document and its page (GET /) show them. `typical` is the
data's median (to the column's `step`) or most frequent level: where the page's form starts
(tests/unit/test_data.py checks it against the file).
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
    description: str
    typical: float
    step: float = 1  # the unit an answer comes in (the page's number inputs step by it)
    scale: str = ""  # what the numbers stand for, where they code a survey's answers


@dataclass(frozen=True)
class Categorical:
    """A text column that must take one of the declared levels."""

    name: str
    levels: tuple[str, ...]
    description: str = ""
    typical: str = ""


Column = Numeric | Categorical

YES_NO = ("no", "yes")
FREQUENCY = ("no", "Sometimes", "Frequently", "Always")

FEATURES: tuple[Column, ...] = (
    Categorical("Gender", ("Female", "Male"), "gender", "Male"),
    Numeric("Age", 10, 100, "age in years", 23),
    Numeric("Height", 1.0, 2.5, "height in metres", 1.70, step=0.01),
    Numeric("Weight", 20, 300, "weight in kilograms", 83, step=0.1),
    Categorical("family_history_with_overweight", YES_NO,
                "a family member has or had overweight", "yes"),
    Categorical("FAVC", YES_NO, "eats high-calorie food frequently", "yes"),
    Numeric("FCVC", 1, 3, "eats vegetables with meals", 2, scale="1 never, 2 sometimes, 3 always"),
    Numeric("NCP", 1, 4, "main meals a day", 3, scale="1 one or two, 3 three, 4 more than three"),
    Categorical("CAEC", FREQUENCY, "eats between meals", "Sometimes"),
    Categorical("SMOKE", YES_NO, "smokes", "no"),
    Numeric("CH2O", 1, 3, "water drunk a day", 2,
            scale="1 less than a litre, 2 one to two litres, 3 more than two litres"),
    Categorical("SCC", YES_NO, "monitors the calories eaten a day", "no"),
    Numeric("FAF", 0, 3, "physical activity frequency", 1,
            scale="0 none, 1 one or two days a week, 2 two to four days, 3 four or five days"),
    Numeric("TUE", 0, 2, "time a day on devices (phone, TV, computer, games)", 1,
            scale="0 up to two hours, 1 three to five hours, 2 more than five hours"),
    Categorical("CALC", FREQUENCY, "drinks alcohol", "Sometimes"),
    Categorical(
        "MTRANS", ("Automobile", "Bike", "Motorbike", "Public_Transportation", "Walking"),
        "usual means of transport", "Public_Transportation",
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
