"""Where training runs and in what precision: the tf.distribute strategy over this cluster's
devices and the Keras mixed-precision policy for them."""

import json
import os

import tensorflow as tf


def distribution_strategy() -> tf.distribute.Strategy:
    """Several workers when TF_CONFIG says so, all GPUs of this worker when it has 2+, else
    TensorFlow's default strategy on the one device (GPU or CPU).

    Not MirroredStrategy on one device: its multi-device input iterator buys nothing there,
    and deleting it at the end of training waited out tf.data's autotuning sleep (up to 35 s
    in the Trainer, see example_io.without_autotuning).
    """
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if sum(len(v) for v in cluster.values()) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def cpu_has_bfloat16_units() -> bool:
    """Whether this x86 CPU computes bfloat16 natively (AMX or AVX-512 BF16), per /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def precision_policy(setting: str) -> str:
    """The Keras mixed-precision policy for the `mixed_precision` hyperparameter.

    auto: float16 on a GPU; bfloat16 on a CPU with bfloat16 units (oneDNN then runs the convs
    and matmuls about twice as fast); float32 otherwise. Heads and losses stay float32.
    """
    if setting == "off":
        return "float32"
    if setting in ("float16", "bfloat16"):
        return f"mixed_{setting}"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bfloat16_units() else "float32"
