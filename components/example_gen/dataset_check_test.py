"""The cheap dataset checks: missing paths, no images, one identity, broken IDX files (headers,
sizes, counts, labels) and TFRecord files whose first record is not a usable tf.train.Example.

Real IDX files come from idx.write_idx, real TFRecords from tf.io.TFRecordWriter; the check
itself reads them without TensorFlow.
"""

import gzip
import os
import struct
import time
import zlib

import numpy as np
import pytest
import tensorflow as tf

from components.example_gen import idx, readers
from components.example_gen.dataset_check import (
    DIGITS,
    FOLDER,
    IDX,
    TFRECORD,
    DatasetError,
    check_data,
)


def _idx(folder, train_labels, test_labels=(0, 1), image_shape=(4, 4)):
    """train-* gzipped, t10k-* plain: images of `image_shape`, one per label."""
    folder.mkdir()
    for prefix, labels, suffix in (("train", train_labels, ".gz"), ("t10k", test_labels, "")):
        images = np.zeros((len(labels), *image_shape), np.uint8)
        idx.write_idx(str(folder / f"{prefix}-images-idx3-ubyte{suffix}"), images)
        idx.write_idx(str(folder / f"{prefix}-labels-idx1-ubyte{suffix}"), np.array(labels))
    return folder


def _example(label: str = "ann") -> tf.train.Example:
    return readers.make_example(readers.encode_png(np.zeros((5, 5), np.uint8)), label)


def _tfrecord(path, *examples, gz=False):
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gz else "")
    with tf.io.TFRecordWriter(str(path), options) as writer:
        for example in examples:
            writer.write(example if isinstance(example, bytes) else example.SerializeToString())


def _tree(root):
    return sorted((folder, sorted(names)) for folder, _, names in os.walk(root))


def test_formats_that_pass(tmp_path):
    assert check_data(DIGITS) == DIGITS
    mnist = _idx(tmp_path / "mnist", [0, 1, 1])  # train-* gzipped, t10k-* plain.
    (tmp_path / "faces" / "ann").mkdir(parents=True)
    (tmp_path / "faces" / "bob").mkdir()
    (tmp_path / "faces" / "ann" / "1.PNG").write_bytes(b"x")
    (tmp_path / "faces" / "bob" / "2.jpg").write_bytes(b"x")
    (tmp_path / "records").mkdir()
    _tfrecord(tmp_path / "records" / "a.tfrecord", _example("ann"), _example("bob"))
    _tfrecord(tmp_path / "records" / "b.tfrecord.gz", _example(), gz=True)
    _tfrecord(tmp_path / "records" / "c.tfr", _example())
    before = _tree(tmp_path)
    assert check_data(str(mnist)) == IDX
    assert check_data(str(tmp_path / "faces")) == FOLDER
    assert check_data(str(tmp_path / "records")) == TFRECORD
    assert _tree(tmp_path) == before  # Nothing written.
    assert check_data("gs://bucket/data") == ""  # Left to ExampleGen.


def _rewrite(path, change):
    """Rewrites a (gzipped if .gz) file's uncompressed bytes with change(bytes)."""
    if str(path).endswith(".gz"):
        path.write_bytes(gzip.compress(change(gzip.decompress(path.read_bytes()))))
    else:
        path.write_bytes(change(path.read_bytes()))


def _layout(data, layout):
    if layout == "missing":
        return
    if layout == "file":
        data.write_text("x")
    elif layout == "empty":
        data.mkdir()
    elif layout == "no_images":
        (data / "ann").mkdir(parents=True)
        (data / "ann" / "notes.txt").write_text("x")
    elif layout == "one_identity":
        (data / "ann").mkdir(parents=True)
        (data / "ann" / "1.png").write_bytes(b"x")
        (data / "empty").mkdir()
    elif layout.startswith("idx"):
        _idx_layout(data, layout)
    else:
        _tfrecord_layout(data, layout)


def _idx_layout(data, layout):
    if layout == "idx_one_label":
        _idx(data, [3, 3, 3])
    elif layout == "idx_2d_images":
        _idx(data, [0, 1], image_shape=(16,))  # (2, 16): 2 dimensions.
    else:
        _idx(data, [0, 1, 2])
    train_images = data / "train-images-idx3-ubyte.gz"
    test_images, test_labels = data / "t10k-images-idx3-ubyte", data / "t10k-labels-idx1-ubyte"
    if layout == "idx_no_test_labels":
        test_labels.unlink()
    elif layout == "idx_no_test_images":
        test_images.unlink()
    elif layout == "idx_bad_magic":
        test_labels.write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 8)
    elif layout == "idx_labels_truncated":
        test_labels.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x01")
    elif layout == "idx_truncated":
        _rewrite(test_images, lambda raw: raw[:-10])
    elif layout == "idx_excess":
        _rewrite(test_images, lambda raw: raw + b"\x00" * 7)
    elif layout == "idx_gz_truncated":
        _rewrite(train_images, lambda raw: raw[:-10])
    elif layout == "idx_gz_cut":  # The compressed stream itself cut short: no trailer left.
        train_images.write_bytes(train_images.read_bytes()[:-6])
    elif layout == "idx_gz_excess":
        _rewrite(train_images, lambda raw: raw + b"\x00" * 16)
    elif layout == "idx_gz_not_gzip":
        train_images.write_bytes(b"\x00\x00\x08\x03 not gzipped at all")
    elif layout == "idx_counts":
        idx.write_idx(str(test_images), np.zeros((3, 4, 4), np.uint8))
        idx.write_idx(str(test_labels), np.array([0, 1], np.uint8))


def _tfrecord_layout(data, layout):
    data.mkdir()
    path = data / ("faces.tfrecord.gz" if layout.endswith("_gz") else "faces.tfrecord")
    _tfrecord(data / "good.tfrecord", _example())
    no_label = tf.train.Example()
    no_label.features.feature["image"].CopyFrom(_example().features.feature["image"])
    int_label = tf.train.Example()
    int_label.CopyFrom(no_label)
    int_label.features.feature["label"].int64_list.value.append(3)
    if layout == "tfr_random":
        path.write_bytes(np.random.default_rng(0).bytes(1000))
    elif layout == "tfr_random_gz":
        path.write_bytes(gzip.compress(np.random.default_rng(0).bytes(1000)))
    elif layout in ("tfr_empty", "tfr_empty_gz"):
        path.write_bytes(b"")
    elif layout == "tfr_short":
        _tfrecord(path, _example())
        path.write_bytes(path.read_bytes()[:-10])
    elif layout == "tfr_no_label":
        _tfrecord(path, no_label, _example())  # Only the first record is read.
    elif layout == "tfr_no_label_gz":
        _tfrecord(path, no_label, gz=True)
    elif layout == "tfr_int_label":
        _tfrecord(path, int_label)
    elif layout == "tfr_not_example":
        _tfrecord(path, b"\xff\xff\xff")


BAD = [
    ("missing", "no such directory"),
    ("file", "not a directory"),
    ("empty", "no dataset found"),
    ("no_images", "no images"),
    ("one_identity", "1 identity"),
    ("idx_one_label", "train labels: 1 identity"),
    ("idx_no_test_labels", "expected one t10k-labels"),
    ("idx_no_test_images", "expected one t10k-images-idx3-ubyte"),
    ("idx_bad_magic", "t10k-labels-idx1-ubyte: wrong magic number.*not an IDX labels file"),
    ("idx_labels_truncated", "declares 5 labels but holds 2"),
    ("idx_2d_images", r"train-images-idx3-ubyte.gz: wrong magic number 0x00000802.*2 dimensions"),
    ("idx_truncated", r"t10k-images-idx3-ubyte: file is 38 bytes .* implies 48 bytes \(truncated"),
    ("idx_excess", r"t10k-images-idx3-ubyte: file is 55 bytes .*\(2, 4, 4\)\) implies 48 bytes$"),
    ("idx_gz_truncated", r"ubyte.gz: gzip trailer .* 54 bytes .* implies 64 bytes \(truncated"),
    ("idx_gz_cut", r"train-images-idx3-ubyte.gz: gzip trailer .* implies 64 bytes"),
    ("idx_gz_excess", r"train-images-idx3-ubyte.gz: gzip trailer .* 80 bytes .* 64 bytes$"),
    ("idx_gz_not_gzip", "train-images-idx3-ubyte.gz: not a gzip file"),
    ("idx_counts", "t10k-images-idx3-ubyte holds 3 images but .*t10k-labels-idx1-ubyte holds 2"),
    ("tfr_random", r"faces.tfrecord: not a TFRecord file \(.*CRC"),
    ("tfr_random_gz", r"faces.tfrecord.gz: not a TFRecord file \("),
    ("tfr_empty", "faces.tfrecord: empty"),
    ("tfr_empty_gz", "faces.tfrecord.gz: empty"),
    ("tfr_short", r"faces.tfrecord: not a TFRecord file \(its first record claims"),
    ("tfr_no_label", "faces.tfrecord: the first record lacks the bytes feature 'label'"),
    ("tfr_no_label_gz", "faces.tfrecord.gz: the first record lacks the bytes feature 'label'"),
    ("tfr_int_label", "faces.tfrecord: the first record's feature 'label' holds int64_list"),
    ("tfr_not_example", "faces.tfrecord: the first record is not a tf.train.Example"),
]


@pytest.mark.parametrize("layout, message", BAD, ids=[b[0] for b in BAD])
def test_bad_datasets_are_refused_in_one_line_naming_the_problem(tmp_path, layout, message):
    data = tmp_path / "data"
    _layout(data, layout)
    before = _tree(tmp_path)
    with pytest.raises(DatasetError, match=message) as error:
        check_data(str(data))
    text = str(error.value)
    assert str(data) in text and "\n" not in text, text
    print(text)
    assert _tree(tmp_path) == before


def test_a_fashion_mnist_sized_gzipped_pair_is_checked_without_inflating_it(tmp_path, monkeypatch):
    """60,000 x 28 x 28 images: the headers, the trailers and the labels are all that is read.
    Prints the time; timing itself belongs in benchmarks."""
    data = tmp_path / "fashion"
    data.mkdir()
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 60_000), ("t10k", 10_000)):
        images = np.zeros((count, 28, 28), np.uint8)
        images[:, 10:18, 10:18] = rng.integers(0, 256, (count, 1, 1), dtype=np.uint8)
        idx.write_idx(str(data / f"{prefix}-images-idx3-ubyte.gz"), images)
        idx.write_idx(str(data / f"{prefix}-labels-idx1-ubyte.gz"), np.arange(count) % 10)
    inflated = []
    decompressobj = zlib.decompressobj

    class Counting:
        def __init__(self, *args):
            self._inflate = decompressobj(*args)

        def decompress(self, data, max_length=0):
            out = self._inflate.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._inflate, name)

    def refused(*args, **kwargs):
        raise AssertionError("gzip.open/GzipFile inflates the whole stream it reads")

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    monkeypatch.setattr(gzip, "open", refused)
    monkeypatch.setattr(gzip, "GzipFile", refused)
    start = time.perf_counter()
    assert check_data(str(data)) == IDX
    seconds = time.perf_counter() - start
    print(f"check_data on 60,000 + 10,000 gzipped 28x28 images: {seconds:.3f} s, "
          f"{sum(inflated)} bytes inflated of {70_000 * 28 * 28 + 70_000 + 48}")  # fmt: skip
    assert sum(inflated) <= 70_000 + 2 * 16 + 2 * 8  # The labels and the four headers only.
