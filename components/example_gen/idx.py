"""Reads MNIST-format IDX files (plain or gzipped) in chunks, checking their headers."""

import gzip
import struct
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

IMAGES_NDIM = 3
LABELS_NDIM = 1
_UBYTE = 0x08


class IdxFormatError(ValueError):
    """An IDX file is malformed; the message names the file and the problem."""


def _open(path: str):
    handle = tf.io.gfile.GFile(path, "rb")
    return gzip.GzipFile(fileobj=handle, mode="rb") if path.endswith(".gz") else handle


def read_header(path: str, expected_ndim: int) -> tuple[int, ...]:
    """Returns the dimensions an IDX file declares, after checking its magic number."""
    with _open(path) as f:
        try:
            magic = f.read(4)
        except (OSError, EOFError) as e:
            raise IdxFormatError(f"{path}: cannot read IDX header: {e}") from e
        if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
            raise IdxFormatError(
                f"{path}: wrong magic number {magic.hex() or '(empty file)'}; "
                f"an IDX file starts with 0x0000{_UBYTE:02x}{expected_ndim:02x}"
            )
        if magic[2] != _UBYTE or magic[3] != expected_ndim:
            raise IdxFormatError(
                f"{path}: wrong magic number 0x{magic.hex()}; expected 0x0000{_UBYTE:02x}"
                f"{expected_ndim:02x} (unsigned bytes, {expected_ndim} dimensions)"
            )
        raw_dims = f.read(4 * expected_ndim)
        if len(raw_dims) < 4 * expected_ndim:
            raise IdxFormatError(f"{path}: truncated IDX header")
        return struct.unpack(f">{expected_ndim}I", raw_dims)


def header_size(ndim: int) -> int:
    return 4 + 4 * ndim


def check_size(path: str, dims: tuple[int, ...]) -> None:
    """Fails if an uncompressed IDX file is shorter or longer than its header says."""
    if path.endswith(".gz"):
        return  # Checked while streaming: gzip cannot be sized without reading it.
    expected = header_size(len(dims)) + int(np.prod(dims))
    actual = tf.io.gfile.stat(path).length
    if actual != expected:
        raise IdxFormatError(
            f"{path}: file is {actual} bytes but its header ({dims}) implies {expected} bytes"
            + (" (truncated?)" if actual < expected else "")
        )


def read_records(path: str, ndim: int, start: int, count: int) -> np.ndarray:
    """Reads records [start, start + count) of an IDX file as a uint8 array."""
    dims = read_header(path, ndim)
    record_shape = tuple(dims[1:])
    record_size = int(np.prod(record_shape)) if record_shape else 1
    with _open(path) as f:
        try:
            f.seek(header_size(ndim) + start * record_size)
            data = f.read(count * record_size)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise IdxFormatError(
                f"{path}: cannot read records {start}..{start + count}: {e}"
            ) from e
    if len(data) != count * record_size:
        raise IdxFormatError(
            f"{path}: truncated: records {start}..{start + count} need "
            f"{count * record_size} bytes, only {len(data)} present"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape((count, *record_shape))


def chunks(total: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    """Yields (start, count) ranges covering [0, total)."""
    for start in range(0, total, chunk_size):
        yield start, min(chunk_size, total - start)


def write_idx(path: str, array: np.ndarray) -> None:
    """Writes a uint8 array as an IDX file (gzipped if the path ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with tf.io.gfile.GFile(path, "wb") as handle:  # Local, gs:// or s3://.
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=handle, mode="wb") as f:
                f.write(header + array.tobytes())
        else:
            handle.write(header + array.tobytes())
