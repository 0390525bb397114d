"""The recipe benchmark's datasets, as standardised float32 arrays in memory.

Each loader returns a `Dataset`: train and test images [N, size, size, 1] (decoded and resized
by preprocessing.decode_images from the bytes ExampleGen stores, as Transform does, at the
pipeline's --image-size, 28 by default; then standardised with the train split's pixel mean and
deviation, as preprocessing_fn does) and integer labels, plus the protocol of its test split:
  * gallery: queries = test images, gallery = train images (closed set: same identities);
  * open: leave-one-out within the test split, whose identities are absent from train.

  fashion-mnist        Fashion-MNIST, 60k train / 10k test (gallery)
  fashion-mnist-5k     a stratified 5,000-image train subsample, full test (gallery)
  fashion-mnist-open   train on classes 0-5, test on the test images of classes 6-9 (open)
  digits               scikit-learn's 1,797 8x8 digits, the pipeline's 80/20 split (gallery),
                       resized to the image size like `siamese-tfx run --data digits`
  digits-open          the same digits, train on all images of digits 0-5, test on all images
                       of digits 6-9 (open: no test identity is trained on, so both splits of
                       the 80/20 split serve; the 6-9 eval images alone would be only 144)
  yale-faces           ../shared/datasets/yalefaces split by identity with ExampleGen's own
                       hash and eval fraction (open), grey, resized to the image size
"""

import dataclasses
import glob
import os

import numpy as np
import tensorflow as tf
from tfx.components.example_gen import base_example_gen_executor

from components.example_gen import digits as digits_source
from components.example_gen import readers, sources
from components.example_gen.split_modes import DEFAULT_EVAL_FRACTION, Split
from components.transform import preprocessing
from pipeline import configs

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
YALE_FACES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "..",
    "shared",
    "datasets",
    "yalefaces",
)
GALLERY, OPEN = "gallery", "open"
SUBSAMPLE = 5000
OPEN_TRAIN_CLASSES = 6
IMAGE_SIZE = preprocessing.DEFAULT_IMAGE_SIZE  # the pipeline's default --image-size


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    protocol: str  # GALLERY or OPEN


def standardised(name, train, train_y, test, test_y, protocol) -> Dataset:
    """Images in [0, 1] standardised with the train split's pixel mean and deviation."""
    mean, std = train.mean(), max(float(train.std()), 1e-6)
    return Dataset(name, (train - mean) / std, train_y, (test - mean) / std, test_y, protocol)


def decoded(encoded: list[bytes], size: int) -> np.ndarray:
    """Encoded images -> float32 [N, size, size, 1] in [0, 1], by Transform's own decoding."""
    images = [
        preprocessing.decode_images(tf.constant(encoded[i : i + 512]), size, 1).numpy()
        for i in range(0, len(encoded), 512)
    ]
    return np.concatenate(images)


def pixels(images_u8: np.ndarray, size: int) -> np.ndarray:
    """IDX images [N, H, W] as the pipeline sees them: PNG bytes decoded and resized (skipped
    when already at `size`, where it changes nothing)."""
    if images_u8.shape[1:] == (size, size):
        return images_u8.astype(np.float32)[..., None] / 255.0
    return decoded([readers.encode_png(image) for image in images_u8], size)


def _idx(folder: str):
    from benchmarks.triplet_benchmark import load_split  # Reads IDX with our reader.

    return load_split(folder, "train"), load_split(folder, "t10k")


def fashion_mnist(size: int = IMAGE_SIZE, folder: str = FASHION_MNIST) -> Dataset:
    (train_x, train_y), (test_x, test_y) = _idx(folder)
    return standardised(
        "fashion-mnist", pixels(train_x, size), train_y, pixels(test_x, size), test_y, GALLERY
    )


def fashion_mnist_5k(size: int = IMAGE_SIZE, folder: str = FASHION_MNIST, seed: int = 0):
    (train_x, train_y), (test_x, test_y) = _idx(folder)
    rng = np.random.default_rng(seed)
    classes = np.unique(train_y)
    keep = np.concatenate(
        [
            rng.choice(np.flatnonzero(train_y == c), SUBSAMPLE // len(classes), replace=False)
            for c in classes
        ]
    )
    train, test = pixels(train_x[keep], size), pixels(test_x, size)
    return standardised("fashion-mnist-5k", train, train_y[keep], test, test_y, GALLERY)


def fashion_mnist_open(size: int = IMAGE_SIZE, folder: str = FASHION_MNIST) -> Dataset:
    (train_x, train_y), (test_x, test_y) = _idx(folder)
    seen, unseen = train_y < OPEN_TRAIN_CLASSES, test_y >= OPEN_TRAIN_CLASSES
    train, test = pixels(train_x[seen], size), pixels(test_x[unseen], size)
    return standardised("fashion-mnist-open", train, train_y[seen], test, test_y[unseen], OPEN)


def digits(
    size: int = IMAGE_SIZE,
    directory: str = os.path.join(configs.DEFAULT_OUTPUT_DIR, "datasets", "digits"),
) -> Dataset:
    (train_x, train_y), (test_x, test_y) = _idx(digits_source.materialize(directory))
    train, test = pixels(train_x, size), pixels(test_x, size)
    return standardised("digits", train, train_y, test, test_y, GALLERY)


def digits_open(
    size: int = IMAGE_SIZE,
    directory: str = os.path.join(configs.DEFAULT_OUTPUT_DIR, "datasets", "digits"),
) -> Dataset:
    (train_x, train_y), (test_x, test_y) = _idx(digits_source.materialize(directory))
    images, labels = np.concatenate([train_x, test_x]), np.concatenate([train_y, test_y])
    seen = labels < OPEN_TRAIN_CLASSES
    train, test = pixels(images[seen], size), pixels(images[~seen], size)
    return standardised("digits-open", train, labels[seen], test, labels[~seen], OPEN)


def eval_identity(identity: str, eval_fraction: float = DEFAULT_EVAL_FRACTION) -> bool:
    """Whether ExampleGen's identity split (sources.output_config) puts `identity` in eval."""
    split = Split(eval_fraction, sources.SPLIT_BY_IDENTITY)
    config = sources.output_config(sources.Dataset(identity, sources.FOLDER, split))
    buckets = [int(b) for b in np.cumsum([s.hash_buckets for s in config.split_config.splits])]
    example = readers.make_example(b"", identity)
    split = base_example_gen_executor._PartitionFn(  # TFX's own hash, exactly
        example, len(buckets), buckets, config.split_config
    )
    return config.split_config.splits[split].name == "eval"


def identity_folder(folder: str, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images [N, size, size, 1] in [0, 1], label ids and identity names of a folder per
    identity: the bytes ExampleGen stores (GIF transcoded to PNG), decoded as Transform does."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder")
    encoded, names = [], []
    for path in readers.identity_images(glob.glob(os.path.join(folder, "*", "*"))):
        example = readers.image_file_to_example(path)
        encoded.append(example.features.feature["image"].bytes_list.value[0])
        names.append(example.features.feature["label"].bytes_list.value[0].decode())
    identities = sorted(set(names))
    labels = np.array([identities.index(n) for n in names], dtype=np.int64)
    return decoded(encoded, size), labels, identities


def yale_faces(size: int = IMAGE_SIZE, folder: str = YALE_FACES) -> Dataset:
    images, labels, identities = identity_folder(folder, size)
    in_eval = np.array([eval_identity(identities[i]) for i in labels])
    return standardised(
        "yale-faces", images[~in_eval], labels[~in_eval], images[in_eval], labels[in_eval], OPEN
    )


LOADERS = {
    "fashion-mnist": fashion_mnist,
    "fashion-mnist-5k": fashion_mnist_5k,
    "fashion-mnist-open": fashion_mnist_open,
    "digits": digits,
    "digits-open": digits_open,
    "yale-faces": yale_faces,
}
