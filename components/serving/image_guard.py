"""Reads image width and height from PNG/JPEG/GIF/BMP headers with TF ops, before decoding.

Lets the served model refuse a decompression bomb (a small file declaring e.g. 20000 x 20000
pixels) without allocating it. Pure TensorFlow, so it runs inside the SavedModel's graph.
Unknown or truncated headers give 0 x 0: the decoder then reports its own error.
"""

import tensorflow as tf

_PAD = 16  # Zero bytes appended so that reads past the end of a short header stay in range.
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...): C0-CF less
# C4 (DHT), C8 (JPG) and CC (DAC).
_SOF_MARKERS = [m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC)]


def _big_endian(data: tf.Tensor, offset, length: int) -> tf.Tensor:
    value = tf.constant(0, tf.int64)
    for i in range(length):
        value = value * 256 + tf.cast(data[offset + i], tf.int64)
    return value


def _little_endian(data: tf.Tensor, offset, length: int) -> tf.Tensor:
    value = tf.constant(0, tf.int64)
    for i in reversed(range(length)):
        value = value * 256 + tf.cast(data[offset + i], tf.int64)
    return value


def _starts_with(data: tf.Tensor, magic: bytes) -> tf.Tensor:
    return tf.reduce_all(tf.equal(data[: len(magic)], tf.constant(list(magic), tf.uint8)))


def _png_size(data):
    return _big_endian(data, 16, 4), _big_endian(data, 20, 4)


def _gif_size(data):
    return _little_endian(data, 6, 2), _little_endian(data, 8, 2)


def _bmp_size(data):
    core_header = tf.equal(_little_endian(data, 14, 4), 12)  # OS/2 BITMAPCOREHEADER: 16-bit
    width = tf.where(core_header, _little_endian(data, 18, 2), _little_endian(data, 18, 4))
    height = tf.where(core_header, _little_endian(data, 20, 2), _little_endian(data, 22, 4))
    height = tf.where(height >= 2**31, 2**32 - height, height)  # negative: top-down rows
    return width, height


def _jpeg_size(data, length):
    """Walks the marker segments from SOI to the first SOF and reads its height and width."""
    sof = tf.constant(_SOF_MARKERS, tf.int64)

    def not_found(pos, width, height):
        return tf.logical_and(pos + 9 < length, tf.equal(width, -1))

    def step(pos, width, height):
        marker = tf.cast(data[pos + 1], tf.int64)
        is_marker = tf.equal(data[pos], 0xFF)
        is_sof = tf.logical_and(is_marker, tf.reduce_any(tf.equal(marker, sof)))
        fill = tf.logical_and(is_marker, tf.equal(marker, 0xFF))
        standalone = tf.logical_or(
            tf.logical_and(marker >= 0xD0, marker <= 0xD8), tf.equal(marker, 0x01)
        )
        next_pos = tf.where(
            fill | (is_marker & standalone),
            pos + tf.where(fill, tf.constant(1, tf.int64), tf.constant(2, tf.int64)),
            pos + 2 + _big_endian(data, pos + 2, 2),
        )
        next_pos = tf.where(is_marker, next_pos, length)  # not a marker: give up
        width = tf.where(is_sof, _big_endian(data, pos + 7, 2), width)
        height = tf.where(is_sof, _big_endian(data, pos + 5, 2), height)
        return next_pos, width, height

    start = tf.constant(2, tf.int64)
    _, width, height = tf.while_loop(
        not_found, step, (start, tf.constant(-1, tf.int64), tf.constant(-1, tf.int64))
    )
    return tf.maximum(width, 0), tf.maximum(height, 0)


def image_size(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(width, height) int64 declared by one encoded image's header; (0, 0) if unknown."""
    raw = tf.io.decode_raw(encoded, tf.uint8)
    length = tf.cast(tf.size(raw), tf.int64)
    data = tf.concat([raw, tf.zeros([_PAD], tf.uint8)], axis=0)
    zero = (tf.constant(0, tf.int64), tf.constant(0, tf.int64))
    return tf.case(
        [
            (_starts_with(data, b"\x89PNG\r\n\x1a\n"), lambda: _png_size(data)),
            (_starts_with(data, b"\xff\xd8\xff"), lambda: _jpeg_size(data, length)),
            (_starts_with(data, b"GIF8"), lambda: _gif_size(data)),
            (_starts_with(data, b"BM"), lambda: _bmp_size(data)),
        ],
        default=lambda: zero,
        exclusive=True,
    )


def image_sizes(encoded: tf.Tensor) -> tf.Tensor:
    """int64 [batch, 2] (width, height) of a 1-D batch of encoded images."""
    return tf.map_fn(
        lambda one: tf.stack(image_size(one)),
        tf.reshape(encoded, [-1]),
        fn_output_signature=tf.TensorSpec([2], tf.int64),
    )


def check_image_sizes(encoded: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """`encoded` unchanged, after failing with InvalidArgument if an image has > max_pixels."""
    sizes = image_sizes(encoded)
    pixels = sizes[:, 0] * sizes[:, 1]
    worst = tf.argmax(tf.concat([pixels, [0]], axis=0))
    size = tf.concat([sizes, [[0, 0]]], axis=0)[worst]
    message = tf.strings.format(
        "image {} of the batch is {} x {} = {} pixels, above the limit of {} pixels "
        "(--max-image-pixels at export)",
        (worst, size[0], size[1], size[0] * size[1], max_pixels),
    )
    check = tf.debugging.Assert(tf.reduce_all(pixels <= max_pixels), [message])
    with tf.control_dependencies([check]):
        return tf.identity(encoded)
