"""The dataset readers: IDX (plain and gzipped), folders per identity, raw TFRecords."""

import gzip
import io
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.example_gen import digits, idx, readers, sources


def write_mnist(directory, images, labels, prefix="train", compress=False):
    suffix = ".gz" if compress else ""
    idx.write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte{suffix}"), images)
    idx.write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte{suffix}"), labels)


def decoded(example: tf.train.Example):
    features = example.features.feature
    image = np.array(Image.open(io.BytesIO(features["image"].bytes_list.value[0])))
    return image, features["label"].bytes_list.value[0].decode()


def run_to_list(transform, directory):
    """Runs a reader in a real Beam pipeline and reads back the tf.Examples it wrote."""
    prefix = os.path.join(str(directory), "beam-output", "examples")
    with beam.Pipeline() as pipeline:
        _ = (
            pipeline
            | transform
            | beam.Map(lambda example: example.SerializeToString())
            | beam.io.WriteToTFRecord(prefix)
        )
    files = tf.io.gfile.glob(prefix + "*")
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files)]


@pytest.mark.parametrize("compress", [False, True])
def test_idx_images_and_labels_round_trip(tmp_path, compress, monkeypatch):
    monkeypatch.setattr(readers, "IDX_CHUNK", 7)  # Several chunks, the last one partial.
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 30, dtype=np.uint8)
    write_mnist(str(tmp_path), images, labels, compress=compress)
    suffix = ".gz" if compress else ""
    examples = run_to_list(
        readers.ReadIdx(
            str(tmp_path / f"train-images-idx3-ubyte{suffix}"),
            str(tmp_path / f"train-labels-idx1-ubyte{suffix}"),
        ),
        tmp_path,
    )
    got = sorted((decoded(e) for e in examples), key=lambda pair: pair[0].tobytes())
    want = sorted(zip(images, (str(x) for x in labels), strict=True), key=lambda p: p[0].tobytes())
    assert len(got) == 30
    for (got_image, got_label), (want_image, want_label) in zip(got, want, strict=True):
        np.testing.assert_array_equal(got_image, want_image)
        assert got_label == want_label


def test_truncated_idx_file_is_named(tmp_path):
    write_mnist(str(tmp_path), np.zeros((10, 28, 28), np.uint8), np.zeros(10, np.uint8))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(idx.IdxFormatError, match=f"{path}.*truncated"):
        readers.check_idx_pair(str(path), str(tmp_path / "train-labels-idx1-ubyte"))


def test_truncated_gzipped_idx_file_is_named(tmp_path):
    write_mnist(
        str(tmp_path), np.ones((50, 28, 28), np.uint8), np.ones(50, np.uint8), compress=True
    )
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(idx.IdxFormatError, match=f"{path}.*truncated"):
        idx.read_records(str(path), idx.IMAGES_NDIM, 0, 50)


def test_gzipped_idx_file_of_the_wrong_size_is_named_before_reading_it(tmp_path):
    write_mnist(str(tmp_path), np.ones((5, 4, 4), np.uint8), np.ones(5, np.uint8), compress=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-16]))  # By its gzip trailer (ISIZE): no streaming.
    message = rf"{path}: gzip trailer.* 80 bytes.* implies 96 bytes \(truncated"
    with pytest.raises(idx.IdxFormatError, match=message):
        readers.check_idx_pair(str(path), str(tmp_path / "train-labels-idx1-ubyte.gz"))


def test_wrong_magic_number_is_named(tmp_path):
    write_mnist(str(tmp_path), np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.uint8))
    # Labels passed where images are expected: 1 dimension instead of 3.
    labels = str(tmp_path / "train-labels-idx1-ubyte")
    with pytest.raises(idx.IdxFormatError, match=f"{labels}: wrong magic number"):
        readers.check_idx_pair(labels, labels)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"PK\x03\x04 not idx at all")
    with pytest.raises(idx.IdxFormatError, match=f"{garbage}: wrong magic number"):
        idx.read_header(str(garbage), idx.IMAGES_NDIM)


def test_image_and_label_counts_must_agree(tmp_path):
    idx.write_idx(str(tmp_path / "train-images-idx3-ubyte"), np.zeros((4, 28, 28), np.uint8))
    idx.write_idx(str(tmp_path / "train-labels-idx1-ubyte"), np.zeros(3, np.uint8))
    with pytest.raises(idx.IdxFormatError, match="4 images.*3 labels"):
        readers.check_idx_pair(
            str(tmp_path / "train-images-idx3-ubyte"), str(tmp_path / "train-labels-idx1-ubyte")
        )


def save_image(path, pixels, image_format):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=image_format)


def test_folder_per_identity_png_jpeg_grey_rgb(tmp_path):
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (20, 16), dtype=np.uint8)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    save_image(tmp_path / "alice" / "a.png", grey, "PNG")
    save_image(tmp_path / "alice" / "b.jpg", rgb, "JPEG")
    save_image(tmp_path / "bob" / "c.jpeg", grey, "JPEG")
    save_image(tmp_path / "bob" / "d.png", rgb, "PNG")
    (tmp_path / "bob" / "notes.txt").write_text("not an image")
    assert sources.detect_format(str(tmp_path)) == sources.FOLDER
    paths = tf.io.gfile.glob(str(tmp_path / "*" / "*"))
    images = readers.identity_images(paths)
    assert len(images) == 4
    examples = run_to_list(readers.ReadIdentityFolders(images), tmp_path)
    by_label = sorted((label, image.shape) for image, label in (decoded(e) for e in examples))
    assert by_label == sorted(
        [("alice", (20, 16)), ("alice", (12, 10, 3)), ("bob", (20, 16)), ("bob", (12, 10, 3))]
    )
    png = [decoded(e)[0] for e in examples if decoded(e)[0].shape == (20, 16)]
    assert any(np.array_equal(image, grey) for image in png)  # PNG bytes pass through unchanged.


def test_corrupt_image_in_folder_is_named(tmp_path):
    bad = tmp_path / "carol" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    with pytest.raises(readers.ImageFileError, match="broken.jpg"):
        readers.image_file_to_example(str(bad))
    text = tmp_path / "carol" / "text.png"
    text.write_text("hello")
    with pytest.raises(readers.ImageFileError, match="text.png: cannot decode image"):
        readers.image_file_to_example(str(text))
    truncated_gif = tmp_path / "carol" / "cut.gif"
    save_image(truncated_gif, np.zeros((40, 40), np.uint8), "GIF")
    truncated_gif.write_bytes(truncated_gif.read_bytes()[:20])
    with pytest.raises(readers.ImageFileError, match="cut.gif: cannot decode image"):
        readers.image_file_to_example(str(truncated_gif))


def test_raw_tfrecords_are_checked(tmp_path):
    good = readers.make_example(readers.encode_png(np.zeros((5, 5), np.uint8)), "x")
    path = str(tmp_path / "data.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(good.SerializeToString())
    assert sources.detect_format(str(tmp_path)) == sources.TFRECORD
    examples = run_to_list(readers.ReadRawTFRecords([path]), tmp_path)
    assert [decoded(e)[1] for e in examples] == ["x"]
    missing_label = tf.train.Example()
    missing_label.features.feature["image"].CopyFrom(good.features.feature["image"])
    with pytest.raises(readers.ImageFileError, match="data.tfrecord.*'label'"):
        readers.check_raw_record((path, missing_label.SerializeToString()))


def test_digits_become_idx_files(tmp_path):
    directory = digits.materialize(str(tmp_path / "digits"))
    assert sources.detect_format(directory) == sources.IDX
    train = readers.check_idx_pair(
        f"{directory}/train-images-idx3-ubyte", f"{directory}/train-labels-idx1-ubyte"
    )
    test = readers.check_idx_pair(
        f"{directory}/t10k-images-idx3-ubyte", f"{directory}/t10k-labels-idx1-ubyte"
    )
    assert train + test == 1797 and 340 < test < 380


def test_unknown_folder_is_rejected(tmp_path):
    (tmp_path / "readme.md").write_text("nothing here")
    with pytest.raises(sources.DatasetError, match="no dataset found"):
        sources.detect_format(str(tmp_path))
    with pytest.raises(sources.DatasetError, match="not a directory"):
        sources.detect_format(str(tmp_path / "missing"))
