"""Beam transforms turning each supported dataset into raw tf.Examples (`image`, `label`)."""

import io
import os

import apache_beam as beam
import tensorflow as tf
from PIL import Image

from components import keys
from components.example_gen import idx, idx_header, sources
from components.example_gen.images import ImageFileError, check_png_or_jpeg, example_image_bytes

# Images per Beam element when streaming IDX files. Each element re-reads a gzipped file from
# its start up to its chunk (gzip cannot seek), so small chunks cost quadratic time: 30 chunks
# of Fashion-MNIST's 60,000 took 3.0 s, 6 take 0.6 s.
IDX_CHUNK = 10_000


def make_example(image: bytes, label: str) -> tf.train.Example:
    """The raw format shared by every source: encoded image bytes and identity name."""
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                keys.IMAGE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                keys.LABEL: tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
            }
        )
    )


def encode_png(pixels) -> bytes:
    """Lossless PNG at zlib's fastest level (1): ExampleGen gzips its TFRecords anyway, and
    level 6 took 30% longer for 4% smaller images (Fashion-MNIST)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


# --- MNIST-format IDX files -------------------------------------------------------------------


def idx_pair(paths: list[str], split_pattern: str) -> tuple[str, str]:
    """Picks the images file and the labels file among the files a split pattern matched."""

    def pick(kind: str) -> str:
        found = sorted(p for p in paths if kind in os.path.basename(p))
        if len(found) != 1:
            raise idx.IdxFormatError(
                f"split pattern {split_pattern}: expected exactly one '{kind}[.gz]' file, "
                f"found {found or 'none'}"
            )
        return found[0]

    return pick("images-idx3-ubyte"), pick("labels-idx1-ubyte")


def check_idx_pair(images_path: str, labels_path: str) -> int:
    """Checks both headers and sizes agree; returns the number of images."""
    image_dims = idx.read_header(images_path, idx.IMAGES_NDIM)
    label_dims = idx.read_header(labels_path, idx.LABELS_NDIM)
    idx.check_size(images_path, image_dims)
    idx.check_size(labels_path, label_dims)
    return idx_header.check_counts(images_path, image_dims, labels_path, label_dims)


def idx_chunk_to_examples(chunk: tuple[int, int], images_path: str, labels_path: str):
    start, count = chunk
    images = idx.read_records(images_path, idx.IMAGES_NDIM, start, count)
    labels = idx.read_records(labels_path, idx.LABELS_NDIM, start, count)
    for pixels, label in zip(images, labels, strict=True):
        yield make_example(encode_png(pixels), str(int(label)))


@beam.ptransform_fn
def ReadIdx(pipeline, images_path: str, labels_path: str):  # noqa: N802 (Beam style)
    total = check_idx_pair(images_path, labels_path)
    return (
        pipeline
        | "Chunks" >> beam.Create(list(idx.chunks(total, IDX_CHUNK)))
        | "Spread" >> beam.Reshuffle()
        | "Decode" >> beam.FlatMap(idx_chunk_to_examples, images_path, labels_path)
    )


# --- A folder per identity --------------------------------------------------------------------


def image_file_to_example(path: str) -> tf.train.Example:
    """PNG/JPEG bytes as they are, any other image format transcoded to PNG (images.py)."""
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    identity = os.path.basename(os.path.dirname(path))
    return make_example(example_image_bytes(path, data), identity)


def identity_images(paths: list[str]) -> list[str]:
    """Keeps image files (by extension) that sit in an identity folder."""
    return sorted(
        p
        for p in paths
        if p.lower().endswith(sources.IMAGE_EXTENSIONS) and not tf.io.gfile.isdir(p)
    )


@beam.ptransform_fn
def ReadIdentityFolders(pipeline, image_paths: list[str]):  # noqa: N802
    return (
        pipeline
        | "Paths" >> beam.Create(image_paths)
        | "Spread" >> beam.Reshuffle()
        | "Read" >> beam.Map(image_file_to_example)
    )


# --- TFRecords already in the raw format ------------------------------------------------------


def check_raw_record(file_and_record: tuple[str, bytes]) -> tf.train.Example:
    path, record = file_and_record
    try:
        example = tf.train.Example.FromString(record)
    except Exception as e:
        raise ImageFileError(f"{path}: record is not a tf.train.Example: {e}") from e
    features = example.features.feature
    for name in (keys.IMAGE, keys.LABEL):
        if name not in features or not features[name].bytes_list.value:
            raise ImageFileError(f"{path}: a record lacks the bytes feature '{name}'")
    check_png_or_jpeg(path, features[keys.IMAGE].bytes_list.value[0])
    return example


@beam.ptransform_fn
def ReadRawTFRecords(pipeline, paths: list[str]):  # noqa: N802
    return (
        pipeline
        | "Files" >> beam.Create(paths)
        | "Read" >> beam.io.ReadAllFromTFRecord(with_filename=True)
        | "Check" >> beam.Map(check_raw_record)
    )
