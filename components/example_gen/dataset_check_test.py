"""The cheap dataset checks: missing paths, no images, one identity, broken IDX labels."""

import gzip
import struct

import pytest

from components.example_gen.dataset_check import (
    DIGITS,
    FOLDER,
    IDX,
    TFRECORD,
    DatasetError,
    check_data,
)


def _labels_file(path, labels, gz=False):
    data = b"\x00\x00\x08\x01" + struct.pack(">I", len(labels)) + bytes(labels)
    (gzip.open if gz else open)(path, "wb").write(data)


def _idx(folder, train_labels, test_labels=(0, 1)):
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"")
    _labels_file(folder / "train-labels-idx1-ubyte.gz", train_labels, gz=True)
    _labels_file(folder / "t10k-labels-idx1-ubyte", test_labels)
    return folder


def test_formats_that_pass(tmp_path):
    assert check_data(DIGITS) == DIGITS
    assert check_data(str(_idx(tmp_path / "mnist", [0, 1, 1]))) == IDX
    (tmp_path / "faces" / "ann").mkdir(parents=True)
    (tmp_path / "faces" / "bob").mkdir()
    (tmp_path / "faces" / "ann" / "1.PNG").write_bytes(b"x")
    (tmp_path / "faces" / "bob" / "2.jpg").write_bytes(b"x")
    assert check_data(str(tmp_path / "faces")) == FOLDER
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "a.tfrecord.gz").write_bytes(b"")
    assert check_data(str(tmp_path / "records")) == TFRECORD
    assert check_data("gs://bucket/data") == ""  # Left to ExampleGen.


@pytest.mark.parametrize(
    "layout, message",
    [
        ("missing", "no such directory"),
        ("file", "not a directory"),
        ("empty", "no dataset found"),
        ("no_images", "no images"),
        ("one_identity", "1 identity"),
        ("idx_one_label", "train labels: 1 identity"),
        ("idx_no_test_labels", "expected one t10k-labels"),
        ("idx_bad_magic", "not an IDX labels file"),
        ("idx_truncated", "declares 5 labels but holds 2"),
    ],
)
def test_bad_datasets_are_refused_naming_the_problem(tmp_path, layout, message):
    data = tmp_path / "data"
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
    elif layout == "idx_one_label":
        _idx(data, [3, 3, 3])
    elif layout == "idx_no_test_labels":
        _idx(data, [0, 1])
        (data / "t10k-labels-idx1-ubyte").unlink()
    elif layout == "idx_bad_magic":
        _idx(data, [0, 1])
        (data / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 8)
    elif layout == "idx_truncated":
        _idx(data, [0, 1])
        (data / "t10k-labels-idx1-ubyte").write_bytes(
            b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x01"
        )
    with pytest.raises(DatasetError, match=message) as error:
        check_data(str(data))
    assert str(data) in str(error.value)
