"""ServedBaseline finds and copies the newest served version."""

import os

import tensorflow as tf
from tfx.utils import path_utils

from components.baseline import served_baseline


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
    assert served_baseline.newest_version(str(serving)) == str(serving / "10")

    uri = str(tmp_path / "artifact")
    assert served_baseline.copy_served_model(str(serving), uri) == str(serving / "10")
    copied = path_utils.serving_model_path(uri)
    assert copied == os.path.join(uri, "Format-Serving")
    model = tf.saved_model.load(copied)
    out = model.signatures["serving_default"](tf.constant([2.0]))
    assert list(out.values())[0].numpy().tolist() == [20.0]


def test_nothing_served_yet(tmp_path):
    assert served_baseline.newest_version(str(tmp_path / "missing")) is None
    (tmp_path / "empty").mkdir()
    uri = str(tmp_path / "artifact")
    assert served_baseline.copy_served_model(str(tmp_path / "empty"), uri) is None
    assert not os.path.exists(os.path.join(uri, "Format-Serving"))
