"""The five benchmark datasets of issue 9, as standardised float32 arrays in memory.

Each loader returns a `Dataset`: train and test images [N, H, W, C] (scaled to [0, 1], then
standardised with the train split's pixel mean and deviation, as preprocessing_fn does) and
integer labels, plus the retrieval protocol of its test split:
  * gallery: queries = test images, gallery = train images (closed set: same identities);
  * open: leave-one-out within the test split, whose identities are absent from train.

  fashion-mnist        Fashion-MNIST, 60k train / 10k test (gallery)
  fashion-mnist-5k     a stratified 5,000-image train subsample, full test (gallery)
  fashion-mnist-open   train on classes 0-5, test on the test images of classes 6-9 (open)
  digits               scikit-learn's 1,797 8x8 digits, the pipeline's 80/20 split (gallery)
  yale-faces           ../shared/datasets/yalefaces split by identity with ExampleGen's own
                       hash and eval fraction (open); IMAGE_SIZE x IMAGE_SIZE grey
"""

import dataclasses
import glob
import os

import numpy as np
from PIL import Image
from tfx.components.example_gen import base_example_gen_executor

from components.example_gen import digits as digits_source
from components.example_gen import readers, sources
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
FACE_SIZE = 64


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    protocol: str  # GALLERY or OPEN


def standardised(name, train_u8, train_y, test_u8, test_y, protocol) -> Dataset:
    def scaled(images):
        images = images.astype(np.float32) / 255.0
        return images[..., None] if images.ndim == 3 else images

    train, test = scaled(train_u8), scaled(test_u8)
    mean, std = train.mean(), max(float(train.std()), 1e-6)
    return Dataset(name, (train - mean) / std, train_y, (test - mean) / std, test_y, protocol)


def _idx(folder: str):
    from benchmarks.triplet_benchmark import load_split  # Reads IDX with our reader.

    return load_split(folder, "train"), load_split(folder, "t10k")


def fashion_mnist(folder: str = FASHION_MNIST) -> Dataset:
    (train_x, train_y), (test_x, test_y) = _idx(folder)
    return standardised("fashion-mnist", train_x, train_y, test_x, test_y, GALLERY)


def fashion_mnist_5k(folder: str = FASHION_MNIST, seed: int = 0) -> Dataset:
    (train_x, train_y), (test_x, test_y) = _idx(folder)
    rng = np.random.default_rng(seed)
    classes = np.unique(train_y)
    keep = np.concatenate(
        [
            rng.choice(np.flatnonzero(train_y == c), SUBSAMPLE // len(classes), replace=False)
            for c in classes
        ]
    )
    return standardised("fashion-mnist-5k", train_x[keep], train_y[keep], test_x, test_y, GALLERY)


def fashion_mnist_open(folder: str = FASHION_MNIST) -> Dataset:
    (train_x, train_y), (test_x, test_y) = _idx(folder)
    seen, unseen = train_y < OPEN_TRAIN_CLASSES, test_y >= OPEN_TRAIN_CLASSES
    return standardised(
        "fashion-mnist-open", train_x[seen], train_y[seen], test_x[unseen], test_y[unseen], OPEN
    )


def digits(directory: str = os.path.join(configs.DEFAULT_OUTPUT_DIR, "datasets", "digits")):
    (train_x, train_y), (test_x, test_y) = _idx(digits_source.materialize(directory))
    return standardised("digits", train_x, train_y, test_x, test_y, GALLERY)


def eval_identity(identity: str, eval_fraction: float = configs.DEFAULT_EVAL_FRACTION) -> bool:
    """Whether ExampleGen's identity split (sources.output_config) puts `identity` in eval."""
    config = sources.output_config(sources.FOLDER, eval_fraction, sources.SPLIT_BY_IDENTITY)
    buckets = [int(b) for b in np.cumsum([s.hash_buckets for s in config.split_config.splits])]
    example = readers.make_example(b"", identity)
    split = base_example_gen_executor._PartitionFn(  # TFX's own hash, exactly
        example, len(buckets), buckets, config.split_config
    )
    return config.split_config.splits[split].name == "eval"


def yale_faces(folder: str = YALE_FACES, size: int = FACE_SIZE) -> Dataset:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: the Yale faces are not there")
    images, names = [], []
    for path in sorted(glob.glob(os.path.join(folder, "*", "*"))):
        if not path.lower().endswith(sources.IMAGE_EXTENSIONS):
            continue
        with Image.open(path) as image:
            grey = image.convert("L").resize((size, size), Image.LANCZOS)
        images.append(np.asarray(grey))
        names.append(os.path.basename(os.path.dirname(path)))
    images, names = np.stack(images), np.array(names)
    identities = sorted(set(names))
    labels = np.array([identities.index(n) for n in names], dtype=np.int64)
    in_eval = np.array([eval_identity(n) for n in names])
    return standardised(
        "yale-faces", images[~in_eval], labels[~in_eval], images[in_eval], labels[in_eval], OPEN
    )


LOADERS = {
    "fashion-mnist": fashion_mnist,
    "fashion-mnist-5k": fashion_mnist_5k,
    "fashion-mnist-open": fashion_mnist_open,
    "digits": digits,
    "yale-faces": yale_faces,
}
