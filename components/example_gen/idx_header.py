"""The IDX (MNIST-format) header rules, in pure Python: the magic number, the dimensions, the size
a header implies and the image and label counts of a split.

Light (no TensorFlow): the up-front check of `run` (dataset_check.py, local files) and ExampleGen
(idx.py and readers.py, through tf.io.gfile, so gs:// and s3:// too) both apply these rules to
the bytes they read, so each rule and its error text is written once.

A gzipped file is sized by its trailer: ISIZE, the last 4 bytes (little-endian), is the
uncompressed size mod 2**32 (RFC 1952), so a truncated or padded file is found without
decompressing it (a cut .gz file ends in deflate data, not its trailer, which then rarely
matches). (For a file of several gzip members ISIZE covers the last member only.)
"""

import math
import struct

IMAGES_NDIM = 3
LABELS_NDIM = 1
UBYTE = 0x08
_KINDS = {IMAGES_NDIM: "images", LABELS_NDIM: "labels"}
GZIP_TRAILER = 4  # Bytes that check_size needs from the end of a .gz file: ISIZE.
_GZIP_MINIMUM = 18  # A 10-byte header and an 8-byte trailer (CRC32, ISIZE).


class IdxFormatError(ValueError):
    """An IDX file is malformed; the message names the file and the problem."""


def header_size(ndim: int) -> int:
    return 4 + 4 * ndim


def parse_header(path: str, head: bytes, expected_ndim: int) -> tuple[int, ...]:
    """The dimensions declared by `head`, the first header_size(expected_ndim) bytes of an IDX
    file (uncompressed), after checking its magic number: unsigned bytes, `expected_ndim`
    dimensions."""
    magic = head[:4]
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise IdxFormatError(
            f"{path}: wrong magic number {magic.hex() or '(empty file)'}; "
            f"an IDX file starts with 0x0000{UBYTE:02x}{expected_ndim:02x}"
        )
    if magic[2] != UBYTE or magic[3] != expected_ndim:
        declared = _dimensions(magic[3]) if magic[3] != expected_ndim else f"type 0x{magic[2]:02x}"
        raise IdxFormatError(
            f"{path}: wrong magic number 0x{magic.hex()}; expected 0x0000{UBYTE:02x}"
            f"{expected_ndim:02x} (unsigned bytes, {_dimensions(expected_ndim)}): not an IDX "
            f"{_KINDS.get(expected_ndim, 'data')} file (it declares {declared})"
        )
    raw_dims = head[4 : header_size(expected_ndim)]
    if len(raw_dims) < 4 * expected_ndim:
        raise IdxFormatError(f"{path}: truncated IDX header")
    return struct.unpack(f">{expected_ndim}I", raw_dims)


def _dimensions(ndim: int) -> str:
    return f"{ndim} dimension{'' if ndim == 1 else 's'}"


def implied_size(dims: tuple[int, ...]) -> int:
    """The (uncompressed) size in bytes of an IDX file with these dimensions."""
    return header_size(len(dims)) + math.prod(dims)


def check_size(path: str, dims: tuple[int, ...], file_size: int, tail: bytes = b"") -> None:
    """Fails unless the file is as long as its header (`dims`) implies: `file_size` is its
    length; for a .gz file `tail` holds its last GZIP_TRAILER bytes, whose ISIZE is compared
    with the implied size mod 2**32."""
    expected = implied_size(dims)
    if not path.endswith(".gz"):
        actual, what, want = file_size, "file is", expected
    elif file_size < _GZIP_MINIMUM or len(tail) < GZIP_TRAILER:
        raise IdxFormatError(f"{path}: {file_size} bytes: too short for a gzip file (truncated?)")
    else:
        (actual,) = struct.unpack("<I", tail[-GZIP_TRAILER:])
        what, want = "gzip trailer gives an uncompressed size of", expected % 2**32
    if actual != want:
        raise IdxFormatError(
            f"{path}: {what} {actual} bytes but its header ({dims}) implies {expected} bytes"
            + (" (truncated?)" if actual < want and expected < 2**32 else "")
        )


def check_counts(images_path: str, image_dims, labels_path: str, label_dims) -> int:
    """Fails unless a split's images and labels files hold as many records; returns it."""
    if image_dims[0] != label_dims[0]:
        raise IdxFormatError(
            f"{images_path} holds {image_dims[0]} images but {labels_path} "
            f"holds {label_dims[0]} labels"
        )
    return image_dims[0]
