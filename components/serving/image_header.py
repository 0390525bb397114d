"""The format and declared width x height of PNG/JPEG/GIF/BMP bytes, in pure Python.

The light twin of components.serving.image_guard, which reads the same header fields with TF
ops inside the served graph: `siamese-tfx predict` uses this one to refuse a file the model
cannot decode, or a pixel bomb (a small file declaring e.g. 20000 x 20000 pixels), before
TensorFlow is imported. The formats are those the model's decoder (tf.io.decode_image) reads,
told apart by the same magic numbers. Standard library only: no TensorFlow, NumPy or PIL.

A header cut short, a PNG whose first chunk is not IHDR or a JPEG with no start-of-frame
before its scan or its end reads as no size (None): the decoder fails on those too. Unlike the
in-graph walk, the JPEG walk skips stray bytes between segments as libjpeg does.
"""

import struct

PNG, JPEG, GIF, BMP = "PNG", "JPEG", "GIF", "BMP"
FORMATS = (PNG, JPEG, GIF, BMP)
_MAGIC = {PNG: b"\x89PNG\r\n\x1a\n", JPEG: b"\xff\xd8\xff", GIF: b"GIF8", BMP: b"BM"}
# JPEG start-of-frame markers: C0-CF less C4 (DHT), C8 (JPG) and CC (DAC).
_SOF_MARKERS = frozenset(m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC))
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD9)])  # TEM, RST0-7, SOI: no length field.
_SOS, _EOI = 0xDA, 0xD9


def image_format(data: bytes) -> str | None:
    """PNG, JPEG, GIF or BMP by the magic number `data` starts with; None for anything else."""
    return next((name for name, magic in _MAGIC.items() if data.startswith(magic)), None)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) the header of `data` declares; None if unknown (see the module doc)."""
    reader = {PNG: _png_size, JPEG: _jpeg_size, GIF: _gif_size, BMP: _bmp_size}.get(
        image_format(data)
    )
    try:
        return reader(data) if reader else None
    except struct.error:  # The header ends before its size field.
        return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    _, chunk, width, height = struct.unpack_from(">I4sII", data, 8)
    return (width, height) if chunk == b"IHDR" else None


def _gif_size(data: bytes) -> tuple[int, int]:
    return struct.unpack_from("<HH", data, 6)


def _bmp_size(data: bytes) -> tuple[int, int]:
    (info_size,) = struct.unpack_from("<I", data, 14)
    if info_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack_from("<HH", data, 18)
    width, height = struct.unpack_from("<Ii", data, 18)
    return width, abs(height)  # negative height: rows stored top-down


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walks the marker segments from SOI to the first SOF and reads its height and width."""
    pos = 2
    while pos + 1 < len(data):
        if data[pos] != 0xFF or data[pos + 1] in (0x00, 0xFF):
            pos += 1  # a stray byte, a fill byte or a stuffed zero: not a marker yet
            continue
        marker = data[pos + 1]
        if marker in _SOF_MARKERS:
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return width, height
        if marker in (_SOS, _EOI):
            return None  # a scan or the end before any frame header
        if marker in _STANDALONE:
            pos += 2
        else:
            (length,) = struct.unpack_from(">H", data, pos + 2)
            pos += 2 + length
    return None
