"""Formats and sizes read in pure Python from real PNG/JPEG/GIF/BMP files (made with PIL),
against what the in-graph guard reads and what TensorFlow decodes."""

import struct

import pytest
import tensorflow as tf

from components.serving import image_guard, image_header
from components.serving.image_guard_test import encoded, png_declaring

# Per format, modes and options PIL writes it with: other pixel layouts, other chunks or
# segments (pHYs, EXIF, a GIF comment) around the size fields.
WRITTEN_AS = {
    "PNG": [("RGB", {}), ("RGBA", {"optimize": True}), ("L", {"dpi": (300, 300)})],
    "JPEG": [
        ("RGB", {"quality": 90, "subsampling": 0}),
        ("L", {"progressive": True}),
        ("RGB", {"exif": b"Exif\x00\x00" + b"\x00" * 300}),  # APP1 before SOF
    ],
    "GIF": [("P", {}), ("L", {"comment": b"a comment block"})],
    "BMP": [("RGB", {}), ("L", {}), ("RGBA", {})],
}
CASES = [(name, mode, options) for name, ways in WRITTEN_AS.items() for mode, options in ways]


@pytest.mark.parametrize("size", [(1, 1), (37, 23), (23, 37), (300, 2)])
@pytest.mark.parametrize("image_format, mode, options", CASES)
def test_reads_the_format_and_size_the_guard_and_the_decoder_see(size, image_format, mode, options):
    data = encoded(size, image_format, mode, **options)
    assert image_header.image_format(data) == image_format
    assert image_header.image_size(data) == size
    assert tuple(int(v) for v in image_guard.image_size(tf.constant(data))) == size
    decoded = tf.io.decode_image(data, expand_animations=False)
    assert tuple(decoded.shape[1::-1]) == size


def test_a_pixel_bomb_declares_its_size_in_a_small_file():
    bomb = png_declaring(20000, 20000)
    assert len(bomb) < 100_000
    assert image_header.image_size(bomb) == (20000, 20000)


def test_top_down_and_os2_bitmaps():
    data = bytearray(encoded((7, 5), "BMP"))
    data[22:26] = struct.pack("<i", -5)  # rows stored top-down
    assert image_header.image_size(bytes(data)) == (7, 5)
    core = b"BM" + b"\x00" * 12 + struct.pack("<IHHHH", 12, 300, 200, 1, 24)
    assert image_header.image_size(core) == (300, 200)


def test_a_jpeg_walk_skips_stray_bytes_between_segments():
    data = encoded((40, 30), "JPEG")
    app0_end = 4 + struct.unpack(">H", data[4:6])[0]
    padded = data[:app0_end] + b"\x00\x17\xff\xff" + data[app0_end:]
    assert image_header.image_size(padded) == (40, 30)


@pytest.mark.parametrize(
    "data, image_format",
    [
        (b"", None),
        (b"hello, world", None),
        (b"\x00\x00\x08\x01" + b"\x00" * 60, None),  # an IDX labels file
        (b"II*\x00" + b"\x00" * 60, None),  # TIFF: PIL reads it, the model does not
        (b"\x89PNG\r\n\x1a\nnot really", "PNG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIDAT" + b"\x00" * 13, "PNG"),  # IHDR not first
        (b"\xff\xd8\xff\xe0\x00", "JPEG"),
        (b"\xff\xd8\xff\xe0\x00\x04\x00\x00\xff\xda\x00\x02", "JPEG"),  # a scan before SOF
        (b"\xff\xd8\xff\xd9", "JPEG"),
        (b"GIF89a\x01", "GIF"),
        (b"BM" + b"\x00" * 20, "BMP"),
    ],
)
def test_other_bytes_and_cut_headers_have_no_size(data, image_format):
    assert image_header.image_format(data) == image_format
    assert image_header.image_size(data) is None
