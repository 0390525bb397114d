"""ServedModel finds and copies the newest served version; the Evaluator drops a missing one."""

import os

import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.baseline import evaluator, served_model


def save_model(directory: str, scale: float) -> None:
    module = tf.Module()
    module.scale = tf.Variable(scale)
    module.f = tf.function(
        lambda x: x * module.scale, input_signature=[tf.TensorSpec([None], tf.float32)]
    )
    tf.saved_model.save(module, directory, signatures={"serving_default": module.f})


def test_newest_numeric_version_with_a_saved_model_is_copied_as_the_trainers_layout(tmp_path):
    serving = tmp_path / "serving"
    save_model(str(serving / "9"), 9.0)
    save_model(str(serving / "10"), 10.0)  # 10 > 9: numeric, not string order.
    (serving / "11").mkdir()  # No saved_model.pb: a push in progress, not a version.
    (serving / "latest").mkdir()
    assert served_model.newest_version(str(serving)) == str(serving / "10")

    uri = str(tmp_path / "artifact")
    assert served_model.copy_served_model(str(serving), uri) == str(serving / "10")
    copied = path_utils.serving_model_path(uri)
    assert copied == os.path.join(uri, "Format-Serving")
    model = tf.saved_model.load(copied)
    out = model.signatures["serving_default"](tf.constant([2.0]))
    assert list(out.values())[0].numpy().tolist() == [20.0]


def test_nothing_served_yet(tmp_path):
    assert served_model.newest_version(str(tmp_path / "missing")) is None
    (tmp_path / "empty").mkdir()
    uri = str(tmp_path / "artifact")
    assert served_model.copy_served_model(str(tmp_path / "empty"), uri) is None
    assert not os.path.exists(os.path.join(uri, "Format-Serving"))


def model_artifact(found: int | None):
    artifact = standard_artifacts.Model()
    if found is not None:
        artifact.set_int_custom_property(served_model.FOUND, found)
    return artifact


def test_evaluator_drops_only_a_baseline_that_was_not_found():
    candidate = [model_artifact(None)]
    missing = {"model": candidate, "baseline_model": [model_artifact(0)]}
    assert evaluator.without_missing_baseline(missing) == {"model": candidate}
    served = {"model": candidate, "baseline_model": [model_artifact(1)]}
    assert evaluator.without_missing_baseline(served) == served
    resolved = {"model": candidate, "baseline_model": [model_artifact(None)]}  # Resolver's
    assert evaluator.without_missing_baseline(resolved) == resolved
    assert evaluator.without_missing_baseline({"model": candidate}) == {"model": candidate}
    assert issubclass(evaluator.Evaluator.EXECUTOR_SPEC.executor_class, evaluator.Executor)
