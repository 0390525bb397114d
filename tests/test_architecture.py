"""The shape of the code, as ARCHITECTURE.md draws it: rooms, one-way arrows, one place for
each name. Read from the source with `ast`, so a change that breaks a rule fails here.
"""

import ast
import dataclasses
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The rooms in order: each may import from the rooms before it, never from one after it.
ROOMS = [
    "components.keys",
    "components.settings",
    "components.files",
    "components.example_io",
    "components.example_gen",
    "components.anomaly_gate",
    "components.transform",
    "components.baseline",
    "components.evaluator",
    "components.reporting",
    "components.trainer",
    "components.serving",
    "pipeline",
]
# Names of the served model and of the raw examples: written in components/keys.py only.
# (Words that are also plain dictionary keys elsewhere, "identities" say, are not listed.)
KEY_LITERALS = {"serving_default", "embedding", "examples_a", "examples_b", "verify", "identify"}
ENTRYPOINT = "pipeline.container_entrypoint"
FEATURE_LITERALS = {"image", "label"}  # as subscripts: features["image"]


def modules(package_dir: str):
    """(dotted name, path) of every non-test module under a top-level package folder."""
    for folder, _, names in os.walk(os.path.join(REPO, package_dir)):
        for name in sorted(names):
            if name.endswith(".py") and not name.endswith("_test.py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                yield dotted.removesuffix(".__init__"), path


def imported(path: str) -> set[str]:
    """Every module of ours a file imports (at any depth: lazy imports count too)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in ("components", "pipeline")}


def room_of(module: str) -> int | None:
    matches = [i for i, room in enumerate(ROOMS) if module == room or module.startswith(room + ".")]
    return max(matches) if matches else None


OURS = [*modules("components"), *modules("pipeline")]


@pytest.mark.parametrize("module, path", OURS, ids=[m for m, _ in OURS])
def test_no_arrow_runs_back_up(module, path):
    own = room_of(module)
    if own is None:  # components/__init__.py
        return
    for target in imported(path):
        room = room_of(target)
        if room is not None:
            assert room <= own, f"{module} imports {target}: {ROOMS[room]} comes after {ROOMS[own]}"


def test_every_module_is_in_a_room_and_says_its_job():
    for module, path in OURS:
        if module == "components":
            continue
        assert room_of(module) is not None, f"{module}: not in ARCHITECTURE.md's rooms"
        with open(path) as f:
            tree = ast.parse(f.read())
        if module.endswith("__main__"):
            continue
        assert ast.get_docstring(tree), f"{path}: no docstring saying its job"


def string_constants(tree):
    """String constants that are not docstrings."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield node


def test_signature_and_feature_names_are_written_once():
    for module, path in OURS:
        if module == "components.keys":
            continue
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in string_constants(tree):
            assert node.value not in KEY_LITERALS, f"{path}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                name = node.slice.value
                assert name not in FEATURE_LITERALS, f"{path}:{node.lineno}: [{name!r}]"


def test_a_new_option_is_one_field():
    """Every command-line option comes from a settings field with its help and range; no
    module adds a shared option by hand."""
    from components.settings import setting_of
    from pipeline import options

    for _, cls in options.SHARED_GROUPS:
        for field in dataclasses.fields(cls):
            spec = setting_of(field)
            assert spec is not None and spec.help, f"{cls.__name__}.{field.name}: no setting"
    for module, path in OURS:
        # The CLI's own commands, and the KFP entrypoint's TFX arguments.
        commands = (
            "pipeline.cli",
            "pipeline.options",
            "pipeline.predict",
            "pipeline.gallery_command",
        )
        if module in (*commands, ENTRYPOINT):
            continue
        with open(path) as f:
            assert ".add_argument(" not in f.read(), f"{path}: builds options by hand"
