"""Blessing refuses settings that could not gate, naming the field and the allowed range."""

import math

import pytest

from components.evaluator.blessing import Blessing
from components.settings import SettingError


@pytest.mark.parametrize(
    "field, value",
    [
        ("lower_bound", 1.5),
        ("lower_bound", -0.1),
        ("lower_bound", math.nan),
        ("max_regression", -0.01),
        ("floor_margin", 2.0),
        ("floor_margin", math.nan),
        ("gating_metric", "eer"),  # Lower is better: not a gating metric.
    ],
)
def test_out_of_range_values_are_refused(field, value):
    with pytest.raises(SettingError) as error:
        Blessing(**{field: value})
    assert error.value.name == field


def test_something_must_gate_and_each_gate_may_be_off():
    with pytest.raises(SettingError, match="set a lower bound"):
        Blessing(lower_bound=None, max_regression=None, floor=False)
    assert Blessing(lower_bound=None, max_regression=None).floor_gain == 0.02
    assert Blessing(floor=False).floor_gain is None
    assert Blessing.from_config(Blessing().to_config()) == Blessing()
    with pytest.raises(AttributeError):
        Blessing().lower_bound = 0.1  # Frozen.
