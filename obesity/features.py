"""Kept for models saved before obesity 0.2: skops files store the BMI step's dotted path
`obesity.features.AddBMI`, and loading looks the class up by that path. New code imports
obesity.model.features; tests/unit/test_layout.py loads such an old file
(tests/data/lr_saved_before_the_layout.skops)."""

from obesity.model.features import AddBMI

__all__ = ["AddBMI"]
