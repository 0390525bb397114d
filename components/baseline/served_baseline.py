"""ServedBaseline: copies the newest model version under the serving dir as the Evaluator's
baseline.

TF Serving loads the highest numeric version `<serving_dir>/<version>/saved_model.pb`; that model
is the one a candidate must beat. The copy is laid out like the Trainer's Model artifact
(`<uri>/Format-Serving/...`, so `path_utils.serving_model_path` finds it) and carries the custom
property `found` (1 or 0). On the first run nothing is served: `found` is 0 and the Evaluator
(components.evaluator.component) judges by the thresholds only. Paths go through tf.io.gfile,
so the serving dir may be local, gs:// or s3://. The step reads the world outside its inputs,
so runners must not cache it (choice.uncached; the Kubeflow spec turns its cache off too).
"""

import os

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.files import copy_tree

FOUND = "found"  # Custom property: 1 when a served model was copied, else 0.
SERVED_VERSION = "served_version"  # Custom property: the version directory's name.
SAVED_MODEL = "saved_model.pb"


def versions(serving_dir: str) -> list[str]:
    """Paths of the complete versions under `serving_dir` (a number holding a SavedModel),
    oldest first; a version being pushed has no saved_model.pb yet and is left out."""
    if not tf.io.gfile.isdir(serving_dir):
        return []
    found = []
    for name in tf.io.gfile.listdir(serving_dir):
        name = name.rstrip("/")
        path = os.path.join(serving_dir, name)
        if name.isdigit() and tf.io.gfile.exists(os.path.join(path, SAVED_MODEL)):
            found.append((int(name), path))
    return [path for _, path in sorted(found)]


def newest_version(serving_dir: str) -> str | None:
    """Path of the highest numeric version under `serving_dir` holding a SavedModel, or None."""
    complete = versions(serving_dir)
    return complete[-1] if complete else None


def copy_served_model(serving_dir: str, model_uri: str) -> str | None:
    """Copies the newest served version into `model_uri`'s Format-Serving; returns its path."""
    version = newest_version(serving_dir)
    if version is not None:
        copy_tree(version, path_utils.serving_model_path(model_uri))
    return version


def found(artifact) -> bool:
    """False only for a ServedBaseline output that says nothing was served."""
    if not artifact.has_custom_property(FOUND):
        return True  # A Resolver's blessed model, or any other real baseline.
    return bool(artifact.get_int_custom_property(FOUND))


@component
def ServedBaseline(  # noqa: N802 (TFX component)
    serving_dir: Parameter[str],
    model: OutputArtifact[standard_artifacts.Model],
):
    """The model served now under `serving_dir`, as a Model artifact; found=0 if none."""
    version = copy_served_model(serving_dir, model.uri)
    model.set_int_custom_property(FOUND, int(version is not None))
    if version is not None:
        model.set_string_custom_property(SERVED_VERSION, os.path.basename(version))
