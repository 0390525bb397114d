"""Cheap checks of a local dataset path before the pipeline starts: no TensorFlow here.

Reads directory listings and the first bytes of each data file, so that a missing path, a
folder with no images, a dataset with a single identity, a truncated IDX file or a file that is
not a TFRecord is refused in a second, not after ExampleGen, Transform and the Trainer have run.
Each error is one line naming the file and the problem.

* IDX, both splits: each header (idx_header's rules, which ExampleGen applies too), each file's
  size against it (a gzipped file by its trailer, never inflated whole), image against label
  counts, and the labels themselves (a few KB to a few MB) for the identities.
* TFRecords: the first record of each file, its framing and the tf.train.Example in it, read
  with a minimal protobuf wire-format reader; ExampleGen checks every record
  (readers.check_raw_record).

Remote paths (gs://, s3://) are left to ExampleGen: reading a bucket needs TensorFlow's file
systems.
"""

import contextlib
import os
import struct
import zlib
from collections.abc import Iterator

from components import keys
from components.example_gen import idx_header
from components.example_gen.idx_header import (
    GZIP_TRAILER,
    IMAGES_NDIM,
    LABELS_NDIM,
    IdxFormatError,
    header_size,
)

DIGITS = "digits"
IDX = "idx"
FOLDER = "folder"
TFRECORD = "tfrecord"

# PNG and JPEG are stored as they are; the others are transcoded to PNG (images.py).
IMAGE_EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".gif", ".pgm", ".ppm", ".pnm", ".pbm", ".bmp", ".tif", ".tiff",
    ".webp",
)  # fmt: skip
IDX_SPLITS = {"train": "train", "eval": "t10k"}
IDX_TRAIN_IMAGES = "train-images-idx3-ubyte"
_MAX_LABELS_READ = 1 << 24


class DatasetError(ValueError):
    """The data path cannot be read as any supported dataset."""


def is_tfrecord_name(name: str) -> bool:
    return ".tfrecord" in name or name.endswith((".tfr", ".tfrecords"))


def check_data(data: str) -> str:
    """Returns the format of `data` (DIGITS, IDX, FOLDER, TFRECORD, or '' for a remote path)
    after the cheap checks (the module's docstring); raises DatasetError naming the file and
    the problem in one line."""
    if data == DIGITS:
        return DIGITS
    if "://" in data:
        return ""
    if not os.path.exists(data):
        raise DatasetError(f"{data}: no such directory (and not the built-in dataset 'digits')")
    if not os.path.isdir(data):
        raise DatasetError(f"{data}: not a directory (and not the built-in dataset 'digits')")
    names = sorted(os.listdir(data))
    if any(n.startswith(IDX_TRAIN_IMAGES) for n in names):
        for prefix in IDX_SPLITS.values():
            _check_idx_split(data, names, prefix)
        return IDX
    tfrecords = [os.path.join(data, n) for n in names if is_tfrecord_name(n)]
    if tfrecords:
        for path in tfrecords:
            if os.path.isfile(path):
                _check_first_record(path)
        return TFRECORD
    folders = [n for n in names if os.path.isdir(os.path.join(data, n))]
    if not folders:
        raise DatasetError(
            f"{data}: no dataset found. Expected MNIST-format files (train-images-idx3-ubyte[.gz], "
            "...), TFRecord files (*.tfrecord*), or one sub-folder of images per identity"
        )
    with_images = [f for f in folders if _has_image(os.path.join(data, f))]
    if not with_images:
        raise DatasetError(
            f"{data}: no images ({', '.join(IMAGE_EXTENSIONS)}) in its {len(folders)} sub-folders"
        )
    _check_identities(set(with_images), f"{data}: identity folders with images")
    return FOLDER


def _has_image(folder: str) -> bool:
    return any(
        name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, name))
        for name in os.listdir(folder)
    )


def _check_identities(identities: set, what: str) -> None:
    if len(identities) < 2:
        raise DatasetError(
            f"{what}: {len(identities)} identit{'y' if len(identities) == 1 else 'ies'}; "
            "triplets need at least 2"
        )


# --- MNIST-format IDX files -------------------------------------------------------------------


def _check_idx_split(data: str, names: list[str], prefix: str) -> None:
    """The `prefix` (train or t10k) images and labels files: headers, labels, sizes, counts."""
    images = _idx_file(data, names, f"{prefix}-images-idx3-ubyte")
    labels = _idx_file(data, names, f"{prefix}-labels-idx1-ubyte")
    try:
        with _reading(images) as stream:
            image_dims = idx_header.parse_header(
                images, stream.read(header_size(IMAGES_NDIM)), IMAGES_NDIM
            )
        label_dims, identities = _idx_labels(labels)
        _check_identities(identities, f"{data}: {prefix} labels")
        _check_size(images, image_dims)
        _check_size(labels, label_dims)
        idx_header.check_counts(images, image_dims, labels, label_dims)
    except IdxFormatError as error:
        raise DatasetError(str(error)) from None


def _idx_file(data: str, names: list[str], stem: str) -> str:
    found = [n for n in names if n.startswith(stem)]
    if len(found) != 1:
        beside = f" beside {IDX_TRAIN_IMAGES}" if stem != IDX_TRAIN_IMAGES else ""
        raise DatasetError(
            f"{data}: expected one {stem}[.gz] file{beside}, found {found or 'none'}"
        )
    return os.path.join(data, found[0])


def _idx_labels(path: str) -> tuple[tuple[int, ...], set[int]]:
    """The dimensions and the distinct labels of an IDX labels file."""
    with _reading(path) as stream:
        dims = idx_header.parse_header(path, stream.read(header_size(LABELS_NDIM)), LABELS_NDIM)
        wanted = min(dims[0], _MAX_LABELS_READ)
        labels = stream.read(wanted)
    if len(labels) < wanted:
        raise DatasetError(f"{path}: declares {dims[0]} labels but holds {len(labels)}")
    return dims, set(labels)


def _check_size(path: str, dims: tuple[int, ...]) -> None:
    """idx_header.check_size on the file's length and, if gzipped, its trailer (4 bytes)."""
    with _errors_named(path):
        size = os.path.getsize(path)
        tail = b""
        if path.endswith(".gz") and size >= GZIP_TRAILER:
            with open(path, "rb") as f:
                f.seek(size - GZIP_TRAILER)
                tail = f.read(GZIP_TRAILER)
    idx_header.check_size(path, dims, size, tail)


# --- TFRecords ---------------------------------------------------------------------------------

_RECORD_HEADER = 12  # uint64 length, uint32 masked CRC32C of the length (little-endian)
_RECORD_FOOTER = 4  # uint32 masked CRC32C of the data
_FEATURE_KINDS = {1: "bytes_list", 2: "float_list", 3: "int64_list"}  # Feature's oneof kind


def _check_first_record(path: str) -> None:
    """The framing of the first record of a TFRecord file (gzipped if named .gz) and the
    `image` and `label` bytes features of the tf.train.Example it holds."""
    with _reading(path) as stream:
        header = stream.read(_RECORD_HEADER)
        if not header:
            raise DatasetError(f"{path}: empty: a TFRecord file holds at least one record")
        if len(header) < _RECORD_HEADER:
            raise DatasetError(
                f"{path}: not a TFRecord file ({len(header)} bytes, shorter than the "
                f"{_RECORD_HEADER}-byte header of a record)"
            )
        length, length_crc = struct.unpack("<QI", header)
        if _masked_crc32c(header[:8]) != length_crc:
            raise DatasetError(
                f"{path}: not a TFRecord file (the first record's length {length} fails its "
                "CRC check)"
            )
        if not path.endswith(".gz") and length > os.path.getsize(path):
            raise DatasetError(
                f"{path}: not a TFRecord file (its first record claims {length} bytes, the "
                f"file holds {os.path.getsize(path)})"
            )
        record = stream.read(length + _RECORD_FOOTER)
    if len(record) < length + _RECORD_FOOTER:
        raise DatasetError(
            f"{path}: not a TFRecord file (its first record claims {length} bytes, then "
            f"{_RECORD_FOOTER} of CRC; {len(record)} follow: truncated?)"
        )
    try:
        _check_example(path, record[:length])
    except _WireError as error:
        raise DatasetError(
            f"{path}: the first record is not a tf.train.Example ({error})"
        ) from None


def _check_example(path: str, record: bytes) -> None:
    features = {}  # name -> serialized Feature; a map's last entry for a key wins.
    for message in _messages(record, 1):  # Example.features
        for entry in _messages(message, 1):  # Features.feature, map<string, Feature>
            fields = {number: value for number, wire, value in _fields(entry) if wire == 2}
            features[bytes(fields.get(1, b""))] = fields.get(2, b"")
    for name in (keys.IMAGE, keys.LABEL):
        kinds = [
            (number, value)
            for number, wire, value in _fields(features.get(name.encode(), b""))
            if number in _FEATURE_KINDS and wire == 2
        ]
        number, values = kinds[-1] if kinds else (1, b"")  # A oneof: the last one set wins.
        if number != 1:
            raise DatasetError(
                f"{path}: the first record's feature '{name}' holds "
                f"{_FEATURE_KINDS[number]} values, not bytes_list"
            )
        if not _messages(values, 1):  # BytesList.value
            raise DatasetError(f"{path}: the first record lacks the bytes feature '{name}'")


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC32C, rotated right by 15 bits, plus a constant."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- Protocol buffers' wire format, as far as tf.train.Example needs it -----------------------


class _WireError(ValueError):
    """Bytes that are not a serialized protocol buffer message."""


_FIXED_SIZES = {1: 8, 5: 4}  # wire type -> bytes: fixed64, fixed32


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _WireError("a varint runs past the end of its message")
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of a serialized message, in order."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire in (1, 2, 5):
            size, pos = _varint(data, pos) if wire == 2 else (_FIXED_SIZES[wire], pos)
            value, pos = data[pos : pos + size], pos + size
            if pos > len(data):
                raise _WireError(f"field {number} runs past the end of its message")
        else:
            raise _WireError(f"field {number} has wire type {wire} (a group, or not protobuf)")
        if number == 0:
            raise _WireError("field number 0")
        yield number, wire, value


def _messages(data: bytes, number: int) -> list[bytes]:
    """The length-delimited values of field `number` (embedded messages, strings, bytes)."""
    return [value for n, wire, value in _fields(data) if n == number and wire == 2]


# --- Reading the start of a file, plain or gzipped --------------------------------------------


class _Start:
    """A file read from its start; a gzipped one is inflated only as far as it is read."""

    _CHUNK = 1 << 16

    def __init__(self, file, gzipped: bool):
        self._file = file
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None

    def read(self, size: int) -> bytes:
        if self._inflate is None:
            return self._file.read(size)
        out = bytearray()
        while len(out) < size and not self._inflate.eof:
            data = self._inflate.unconsumed_tail or self._file.read(self._CHUNK)
            if not data:
                break
            out += self._inflate.decompress(data, size - len(out))
        return bytes(out)


@contextlib.contextmanager
def _errors_named(path: str):
    """An OSError or a corrupt gzip stream becomes a DatasetError naming `path`."""
    try:
        yield
    except zlib.error as error:
        raise DatasetError(f"{path}: not a gzip file, or a corrupt one ({error})") from None
    except OSError as error:
        raise DatasetError(f"{path}: unreadable: {error}") from None


@contextlib.contextmanager
def _reading(path: str) -> Iterator[_Start]:
    with _errors_named(path), open(path, "rb") as file:
        yield _Start(file, path.endswith(".gz"))
