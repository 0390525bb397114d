"""Command-line options made from the settings dataclasses, and their checks, before anything
heavy.

Each option is a field of a settings dataclass (HParams, Blessing, ServingSettings,
ReportSettings, Split, KubeflowTarget) declared with `components.settings.setting`: its flag,
default, choices, range and help are read from the field, so an option is written once.
`add_settings(parser, title, cls)` adds a dataclass's fields as an argument group;
`settings_from(args, cls)` builds the validated dataclass back from the parsed options. A bad
value raises `OptionError`, one line naming the flag, the value and the allowed range.
Nothing here imports TensorFlow, TFX or Beam: validation answers within a second.
"""

import argparse
import dataclasses
import errno
import math
import os

from components.evaluator.blessing import Blessing
from components.example_gen.split_modes import Dataset, Split
from components.reporting.settings import ReportSettings
from components.serving.settings import ServingSettings
from components.settings import SettingError, allowed_text, setting_of, value_type
from components.trainer.hparams import HParams
from pipeline.settings import PipelineSettings

# The option groups `run` and `compile kubeflow` both take: (title, settings dataclass).
SHARED_GROUPS = (
    ("data", Split),
    ("blessing (Evaluator)", Blessing),
    ("serving (verify and identify signatures)", ServingSettings),
    ("report", ReportSettings),
    ("training", HParams),
)


class OptionError(ValueError):
    """A command-line option with a value outside its allowed range; the message says which."""


def option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def flag_of(field: dataclasses.Field) -> str:
    return setting_of(field).flag or option_name(field.name)


def _format_value(value) -> str:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return repr(value)
    return str(value)


def _help(field: dataclasses.Field) -> str:
    """The field's help, with its range and default, as argparse prints it."""
    spec, kind = setting_of(field), value_type(field)
    text = spec.help
    if kind is not bool and not spec.required:
        allowed = allowed_text(field).removeprefix("expected ")
        default = f"default {_format_value(field.default)}" if field.default != "" else ""
        facts = "; ".join(filter(None, (allowed, default)))
        text += f" ({facts})" if facts else ""
    return text.replace("%", "%%")


def add_field(group, field: dataclasses.Field) -> None:
    """One settings field as an argparse option (group: a parser, group or exclusive group)."""
    spec, kind = setting_of(field), value_type(field)
    kwargs = {"dest": field.name, "help": _help(field)}
    if kind is bool:
        kwargs["default"] = field.default
        kwargs["action"] = "store_false" if spec.off_switch else argparse.BooleanOptionalAction
    else:
        kwargs["type"] = spec.parse or kind
        if spec.required:
            kwargs["required"] = True
        else:
            kwargs["default"] = field.default
        if spec.choices is not None:
            kwargs["choices"] = spec.choices
        if spec.metavar:
            kwargs["metavar"] = spec.metavar
    group.add_argument(flag_of(field), **kwargs)


def add_settings(parser: argparse.ArgumentParser, title: str, cls, also=()) -> None:
    """The command-line fields of `cls` (and those named in `also`) as one argument group."""
    group = parser.add_argument_group(title)
    exclusive = {}
    for field in dataclasses.fields(cls):
        spec = setting_of(field)
        if spec is None or not (spec.command_line or field.name in also):
            continue
        target = group
        if spec.exclusive:
            if spec.exclusive not in exclusive:
                exclusive[spec.exclusive] = group.add_mutually_exclusive_group()
            target = exclusive[spec.exclusive]
        add_field(target, field)


def add_shared_options(parser: argparse.ArgumentParser) -> None:
    for title, cls in SHARED_GROUPS:
        add_settings(parser, title, cls)


def option_error(error: SettingError, cls) -> OptionError:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    flag = flag_of(fields[error.name]) if error.name in fields else option_name(error.name)
    if error.value is True:  # A switch: its name says it all.
        return OptionError(f"{flag}: {error.allowed}")
    return OptionError(f"{flag} {_format_value(error.value)}: {error.allowed}")


def settings_from(args: argparse.Namespace, cls, **parts):
    """`cls` from the parsed options (fields without an option keep their defaults) and
    `parts` (fields that are settings objects of their own)."""
    values = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if setting_of(f) is not None and hasattr(args, f.name)
    }
    try:
        return cls(**values, **parts)
    except SettingError as error:
        raise option_error(error, cls) from None


def pipeline_settings_from(args: argparse.Namespace) -> PipelineSettings:
    """Every shared option checked; raises OptionError for the first bad one."""
    return settings_from(
        args,
        PipelineSettings,
        hparams=settings_from(args, HParams),
        blessing=settings_from(args, Blessing),
        serving=settings_from(args, ServingSettings),
        report=settings_from(args, ReportSettings),
    )


def dataset_from(data: str, data_format: str, split: Split) -> Dataset:
    """The Dataset, or an OptionError when the split mode does not apply to its format."""
    try:
        return Dataset(data, data_format, split)
    except SettingError as error:
        raise option_error(error, Split) from None


def check_data(data: str, split: Split) -> None:
    """The --data path of `run`, as far as a directory listing can tell (see dataset_check),
    and whether its format takes the split mode."""
    from components.example_gen.dataset_check import DatasetError, check_data

    try:
        data_format = check_data(data)
    except DatasetError as error:
        raise OptionError(f"--data {error}") from None
    if data_format:  # Remote paths: the format is known only once ExampleGen's host reads it.
        dataset_from(data, data_format, split)


def prepare_output_dir(output_dir: str) -> None:
    """Makes `output_dir` (and its parents) and proves it writable, or raises OptionError
    naming the path and the problem: before the run lock and anything heavy."""
    path = os.path.abspath(output_dir)
    flag = f"--output-dir {output_dir}"
    if os.path.exists(path) and not os.path.isdir(path):
        raise OptionError(f"{flag}: not a directory")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        where = error.filename or path
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            problem = f"cannot write there ({error.strerror}: {where})"
        elif error.errno == errno.ENOTDIR:
            problem = f"a parent is not a directory ({where})"
        else:
            problem = f"cannot create it ({error.strerror}: {where})"
        raise OptionError(f"{flag}: {problem}") from None
