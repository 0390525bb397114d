"""Range checks shared by the settings dataclasses (HParams, Blessing): no TensorFlow here.

A failed check raises `SettingError`, which names the field, the value and the allowed range,
so a command line can map the field back to its option (image_size -> --image-size).
"""

import math


class SettingError(ValueError):
    """A setting outside its allowed values."""

    def __init__(self, name: str, value, allowed: str):
        self.name, self.value, self.allowed = name, value, allowed
        super().__init__(f"{name} {value!r}: {allowed}")


def check_int(name: str, value, low: int, high: int | None = None) -> None:
    """`value` is an int (not a bool) in [low, high]."""
    allowed = (
        f"expected a whole number >= {low}"
        if high is None
        else (f"expected a whole number from {low} to {high}")
    )
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError(name, value, allowed)
    if value < low or (high is not None and value > high):
        raise SettingError(name, value, allowed)


def check_float(
    name: str,
    value,
    low: float,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """`value` is a finite number in [low, high]; low_open / high_open exclude the ends."""
    above = f"> {low:g}" if low_open else f">= {low:g}"
    below = f" and {'<' if high_open else '<='} {high:g}" if high is not None else ""
    allowed = f"expected a finite number {above}{below}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingError(name, value, allowed)
    value = float(value)
    if not math.isfinite(value) or value < low or (low_open and value == low):
        raise SettingError(name, value, allowed)
    if high is not None and (value > high or (high_open and value == high)):
        raise SettingError(name, value, allowed)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise SettingError(name, value, f"choose from {', '.join(map(str, choices))}")
