"""Finds what kind of image dataset a path holds and how ExampleGen should split it.

Splits of folder and TFRecord data are hashes, by image or by identity (split_modes.py); IDX
data keeps its train/t10k files. Identity folders default to `identity` (a folder per person is
what verification is for); TFRecords default to `image`, since they often hold a few classes
(say 10) where holding out whole classes would leave little to train on. Choose with
`--split-by`.
"""

import contextlib
import os

import tensorflow as tf
from tfx.proto import example_gen_pb2

from components import keys
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
from components.example_gen.split_modes import (  # noqa: F401 (re-exported)
    SPLIT_BY,
    SPLIT_BY_IDENTITY,
    SPLIT_BY_IMAGE,
    Dataset,
    default_split_by,
)

PARTITION_FEATURE = keys.LABEL  # The raw identity feature hashed by identity.


@contextlib.contextmanager
def utf8_names(data: str):
    """Turns a bare UnicodeDecodeError from listing `data` into a DatasetError naming the path.

    File systems allow any bytes in a name; TensorFlow's file API (and labels) need UTF-8.
    """
    try:
        yield
    except UnicodeDecodeError as e:
        name = e.object if isinstance(e.object, bytes) else b""
        folder = os.path.dirname(name.rstrip(b"/")) if name.count(b"/") > 1 else name
        raise DatasetError(
            f"{data}: the folder or file name {folder!r} is not valid UTF-8 text "
            f"({e.reason}); identity folder names become labels: rename it"
        ) from e


def detect_format(data: str) -> str:
    """Returns DIGITS, IDX, FOLDER or TFRECORD for `data` (a name or a directory)."""
    if data == DIGITS:
        return DIGITS
    if not tf.io.gfile.isdir(data):
        raise DatasetError(f"{data}: not a directory (and not the built-in dataset 'digits')")
    with utf8_names(data):
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


def output_config(dataset: Dataset) -> example_gen_pb2.Output:
    """Keeps IDX train/t10k files as they are; hash-splits the other formats by image or by
    identity (see the module docstring)."""
    if dataset.format in (IDX, DIGITS):
        return example_gen_pb2.Output()
    eval_fraction = dataset.eval_fraction
    buckets = 100
    eval_buckets = max(1, round(eval_fraction * buckets))
    split_config = example_gen_pb2.SplitConfig(
        splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=buckets - eval_buckets),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
        ]
    )
    # A oneof: set only to hash a feature, not the example.
    if dataset.split_by == SPLIT_BY_IDENTITY:
        split_config.partition_feature_name = PARTITION_FEATURE
    return example_gen_pb2.Output(split_config=split_config)
