"""Finds what kind of image dataset a path holds and how ExampleGen should split it."""

import os

import tensorflow as tf
from tfx.proto import example_gen_pb2

from components.example_gen.dataset_check import (  # noqa: F401 (re-exported)
    DIGITS,
    FOLDER,
    IDX,
    IDX_SPLITS,
    IMAGE_EXTENSIONS,
    TFRECORD,
    DatasetError,
)
from components.example_gen.dataset_check import is_tfrecord_name as _is_tfrecord_name


def detect_format(data: str) -> str:
    """Returns DIGITS, IDX, FOLDER or TFRECORD for `data` (a name or a directory)."""
    if data == DIGITS:
        return DIGITS
    if not tf.io.gfile.isdir(data):
        raise DatasetError(f"{data}: not a directory (and not the built-in dataset 'digits')")
    names = [n.rstrip("/") for n in tf.io.gfile.listdir(data)]
    if any(n.startswith("train-images-idx3-ubyte") for n in names):
        return IDX
    if any(_is_tfrecord_name(n) for n in names):
        return TFRECORD
    if any(tf.io.gfile.isdir(os.path.join(data, n)) for n in names):
        return FOLDER
    raise DatasetError(
        f"{data}: no dataset found. Expected MNIST-format files (train-images-idx3-ubyte[.gz], "
        "...), TFRecord files (*.tfrecord*), or one sub-folder of images per identity"
    )


def input_config(data_format: str) -> example_gen_pb2.Input:
    """File patterns, relative to the data directory, for each input split."""
    if data_format in (IDX, DIGITS):
        # Both images and labels match, so a change to either invalidates the cache.
        return example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name=split, pattern=f"{prefix}-*-ubyte*")
                for split, prefix in IDX_SPLITS.items()
            ]
        )
    pattern = "*/*" if data_format == FOLDER else "*.tfr*"
    return example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern=pattern)])


def output_config(data_format: str, eval_fraction: float) -> example_gen_pb2.Output:
    """Keeps IDX train/test files as they are; hash-splits the other formats."""
    if data_format in (IDX, DIGITS):
        return example_gen_pb2.Output()
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval fraction must be between 0 and 1, got {eval_fraction}")
    buckets = 100
    eval_buckets = max(1, round(eval_fraction * buckets))
    return example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(
                    name="train", hash_buckets=buckets - eval_buckets
                ),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
            ]
        )
    )
