"""The mixed-precision policy for each `mixed_precision` setting."""

import tensorflow as tf

from components.trainer import devices


def test_precision_policy():
    assert devices.precision_policy("off") == "float32"
    assert devices.precision_policy("bfloat16") == "mixed_bfloat16"
    expected = "mixed_bfloat16" if devices.cpu_has_bfloat16_units() else "float32"
    if not tf.config.list_physical_devices("GPU"):
        assert devices.precision_policy("auto") == expected
