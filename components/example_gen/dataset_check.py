"""Cheap checks of a local dataset path before the pipeline starts: no TensorFlow here.

Reads only directory listings and IDX label files (a few KB to a few MB), so that a missing
path, a folder with no images or a dataset with a single identity is refused in a second,
not after ExampleGen, Transform and the Trainer have run. Remote paths (gs://, s3://) are left
to ExampleGen: reading a bucket needs TensorFlow's file systems.
"""

import gzip
import os
import struct

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
_IDX_LABELS_MAGIC = b"\x00\x00\x08\x01"  # unsigned bytes, one dimension
_MAX_LABELS_READ = 1 << 24


class DatasetError(ValueError):
    """The data path cannot be read as any supported dataset."""


def is_tfrecord_name(name: str) -> bool:
    return ".tfrecord" in name or name.endswith((".tfr", ".tfrecords"))


def check_data(data: str) -> str:
    """Returns the format of `data` (DIGITS, IDX, FOLDER, TFRECORD, or '' for a remote path)
    after the checks a directory listing allows; raises DatasetError naming the problem."""
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
            _check_identities(_idx_labels(data, names, prefix), f"{data}: {prefix} labels")
        return IDX
    if any(is_tfrecord_name(n) for n in names):
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


def _idx_labels(data: str, names: list[str], prefix: str) -> set[int]:
    """The distinct labels of the `prefix`-labels-idx1-ubyte[.gz] file."""
    found = [n for n in names if n.startswith(f"{prefix}-labels-idx1-ubyte")]
    if len(found) != 1:
        raise DatasetError(
            f"{data}: expected one {prefix}-labels-idx1-ubyte[.gz] file beside "
            f"{IDX_TRAIN_IMAGES}, found {found or 'none'}"
        )
    path = os.path.join(data, found[0])
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            header = f.read(8)
            if len(header) < 8 or header[:4] != _IDX_LABELS_MAGIC:
                raise DatasetError(f"{path}: not an IDX labels file (magic {header[:4].hex()})")
            (count,) = struct.unpack(">I", header[4:])
            labels = f.read(min(count, _MAX_LABELS_READ))
    except (OSError, EOFError) as error:
        raise DatasetError(f"{path}: unreadable: {error}") from error
    if len(labels) < min(count, _MAX_LABELS_READ):
        raise DatasetError(f"{path}: declares {count} labels but holds {len(labels)}")
    return set(labels)
