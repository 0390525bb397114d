"""Settings fields that carry their own range and help, and the checks that enforce them.

A settings dataclass (HParams, Blessing, ServingSettings, ...) declares each field with
`setting(default, help, low=..., high=..., choices=...)`: the range is written once, in the
field. `check_fields(self)` in its `__post_init__` enforces every range, and the command line
(pipeline/options.py) builds its flags, defaults, choices and help from the same metadata, so
a new option is one field. Rules between fields stay in the dataclass's `__post_init__`.

A failed check raises `SettingError`, which names the field, the value and the allowed range,
so a command line can map the field back to its flag (image_size -> --image-size).
No TensorFlow here.
"""

import dataclasses
import math

SETTING = "setting"  # The dataclass field metadata key holding a `Setting`.


class SettingError(ValueError):
    """A setting outside its allowed values."""

    def __init__(self, name: str, value, allowed: str):
        self.name, self.value, self.allowed = name, value, allowed
        super().__init__(f"{name} {value!r}: {allowed}")


@dataclasses.dataclass(frozen=True)
class Setting:
    """What a settings field allows, and how the command line offers it."""

    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False
    choices: tuple | None = None  # besides the default, which may mean "decide for me"
    optional: bool = False  # None is allowed (and means "off")
    flag: str = ""  # "" = --field-name
    metavar: str | None = None
    # A bool field offered as one switch that turns it off (e.g. --no-gallery), instead of
    # --name / --no-name.
    off_switch: bool = False
    exclusive: str = ""  # fields sharing a name form a mutually exclusive flag group
    command_line: bool = True  # False: set by the pipeline, not by a flag
    required: bool = False  # the command line must give it (no default there)
    parse: object = None  # argparse `type` for values written in their own notation


def setting(default, help: str, **facts) -> dataclasses.Field:  # noqa: A002 (argparse's word)
    """A dataclass field with its default and its `Setting` facts."""
    return dataclasses.field(default=default, metadata={SETTING: Setting(help, **facts)})


def setting_of(field: dataclasses.Field) -> Setting | None:
    return field.metadata.get(SETTING)


def value_type(field: dataclasses.Field) -> type:
    """bool, int, float or str: the type of the field's values (from its default)."""
    default = field.default
    if isinstance(default, bool):
        return bool
    for kind in (int, float, str):
        if isinstance(default, kind):
            return kind
    raise TypeError(f"setting {field.name}: default {default!r} is not a bool, int, float or str")


def int_range(low: int, high: int | None = None) -> str:
    if high is None:
        return f"expected a whole number >= {low}"
    return f"expected a whole number from {low} to {high}"


def float_range(
    low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> str:
    above = f"> {low:g}" if low_open else f">= {low:g}"
    below = f" and {'<' if high_open else '<='} {high:g}" if high is not None else ""
    return f"expected a finite number {above}{below}"


def check_int(name: str, value, low: int, high: int | None = None) -> None:
    """`value` is an int (not a bool) in [low, high]."""
    allowed = int_range(low, high)
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
    allowed = float_range(low, high, low_open=low_open, high_open=high_open)
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


def allowed_text(field: dataclasses.Field) -> str:
    """The field's range in words ("" when any value of its type goes), for help texts."""
    spec, kind = setting_of(field), value_type(field)
    if spec.choices is not None or kind in (bool, str):
        return ""
    low = spec.low if spec.low is not None else (-math.inf if kind is float else None)
    if kind is int:
        return int_range(int(low), None if spec.high is None else int(spec.high))
    return float_range(low, spec.high, low_open=spec.low_open, high_open=spec.high_open)


def check_field(field: dataclasses.Field, value) -> None:
    """One field's value against its Setting; raises SettingError."""
    spec, kind, name = setting_of(field), value_type(field), field.name
    if value is None and spec.optional:
        return
    if spec.choices is not None:
        if value != field.default:
            check_choice(name, value, spec.choices)
    elif kind is bool:
        if not isinstance(value, bool):
            raise SettingError(name, value, "expected true or false")
    elif kind is int:
        low = -(2**63) if spec.low is None else int(spec.low)
        check_int(name, value, low, None if spec.high is None else int(spec.high))
    elif kind is float:
        low = -math.inf if spec.low is None else spec.low
        check_float(name, value, low, spec.high, low_open=spec.low_open, high_open=spec.high_open)
    elif not isinstance(value, str):
        raise SettingError(name, value, "expected text")


def check_fields(instance) -> None:
    """Every `setting` field of a dataclass instance within its range; raises SettingError."""
    for field in dataclasses.fields(instance):
        if setting_of(field) is not None:
            check_field(field, getattr(instance, field.name))


def from_config(cls, config: dict | None, what: str):
    """`cls(**config)`, refusing keys it has no field for (a typo would else be ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(config or {}) - names
    if unknown:
        raise ValueError(f"unknown {what} {sorted(unknown)}; known: {sorted(names)}")
    return cls(**(config or {}))
