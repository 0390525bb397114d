"""Header sizes of real PNG/JPEG/GIF/BMP files (made with PIL) and the pixel-limit check."""

import io
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.serving import image_guard


def encoded(size, image_format, mode="RGB", **options):
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(buffer, image_format, **options)
    return buffer.getvalue()


def png_declaring(width, height):
    """A tiny, truncated-but-valid-header PNG that declares width x height (a 'bomb')."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    row = b"\x00" + b"\x00" * width
    data = zlib.compress(row * 64, 9)  # the first rows only: small on disk
    idat = (
        struct.pack(">I", len(data))
        + b"IDAT"
        + data
        + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    )
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat


@pytest.mark.parametrize(
    "image_format, mode, options",
    [
        ("PNG", "RGB", {}),
        ("PNG", "L", {}),
        ("JPEG", "RGB", {"quality": 90}),
        ("JPEG", "L", {"progressive": True}),
        ("JPEG", "RGB", {"exif": b"Exif\x00\x00" + b"\x00" * 300}),  # APP1 before SOF
        ("GIF", "P", {}),
        ("BMP", "RGB", {}),
        ("BMP", "L", {}),
    ],
)
def test_reads_the_declared_size(image_format, mode, options):
    data = encoded((37, 23), image_format, mode, **options)
    width, height = image_guard.image_size(tf.constant(data))
    assert (int(width), int(height)) == (37, 23)
    decoded = tf.io.decode_image(data, expand_animations=False)
    assert decoded.shape[:2] == (23, 37)


def test_a_small_file_declaring_20000_by_20000_is_refused_before_decoding():
    bomb = png_declaring(20000, 20000)
    assert len(bomb) < 100_000
    assert [int(v) for v in image_guard.image_size(tf.constant(bomb))] == [20000, 20000]
    small = encoded((8, 8), "PNG")
    with pytest.raises(tf.errors.InvalidArgumentError, match="20000 x 20000 = 400000000 pixels"):
        image_guard.check_image_sizes(tf.constant([small, bomb]), 16_000_000)


def test_images_within_the_limit_pass_unchanged_in_a_graph():
    images = tf.constant([encoded((40, 30), "JPEG"), encoded((30, 40), "GIF", "P")])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def guarded(batch):
        return image_guard.check_image_sizes(batch, 1200)

    assert list(guarded(images).numpy()) == list(images.numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="40 x 30 = 1200 pixels|above"):
        image_guard.check_image_sizes(images, 1199)


def test_unknown_or_truncated_headers_read_as_zero():
    sizes = image_guard.image_sizes(tf.constant([b"", b"hello", b"\xff\xd8\xff\xe0\x00"]))
    assert sizes.numpy().tolist() == [[0, 0], [0, 0], [0, 0]]
