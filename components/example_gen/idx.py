"""Reads MNIST-format IDX files (plain or gzipped) in chunks, checking their headers.

Reads through tf.io.gfile (local, gs://, s3://); the header and size rules themselves are
idx_header's, shared with the up-front check of `run` (dataset_check.py).
"""

import gzip
import struct
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from components.example_gen import idx_header
from components.example_gen.idx_header import (  # noqa: F401 (re-exported)
    GZIP_TRAILER,
    IMAGES_NDIM,
    LABELS_NDIM,
    UBYTE,
    IdxFormatError,
    header_size,
    parse_header,
)


def _open(path: str):
    handle = tf.io.gfile.GFile(path, "rb")
    return gzip.GzipFile(fileobj=handle, mode="rb") if path.endswith(".gz") else handle


def read_header(path: str, expected_ndim: int) -> tuple[int, ...]:
    """Returns the dimensions an IDX file declares, after checking its magic number."""
    with _open(path) as f:
        try:
            head = f.read(header_size(expected_ndim))
        except (OSError, EOFError) as e:
            raise IdxFormatError(f"{path}: cannot read IDX header: {e}") from e
    return parse_header(path, head, expected_ndim)


def check_size(path: str, dims: tuple[int, ...]) -> None:
    """Fails if an IDX file is shorter or longer than its header says (a gzipped one by its
    trailer's ISIZE, idx_header.check_size)."""
    length = tf.io.gfile.stat(path).length
    tail = b""
    if path.endswith(".gz") and length >= GZIP_TRAILER:
        with tf.io.gfile.GFile(path, "rb") as f:
            f.seek(length - GZIP_TRAILER)
            tail = f.read(GZIP_TRAILER)
    idx_header.check_size(path, dims, length, tail)


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
    header = bytes([0, 0, UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with tf.io.gfile.GFile(path, "wb") as handle:  # Local, gs:// or s3://.
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=handle, mode="wb") as f:
                f.write(header + array.tobytes())
        else:
            handle.write(header + array.tobytes())
