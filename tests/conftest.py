"""Shared fixtures: small real datasets written to disk the way users provide them."""

import os

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from components.example_gen import idx

# The pipeline's steps, as the console, ML Metadata and the compiled KFP spec name them.
UPSTREAM = ("ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "AnomalyGate")
UPSTREAM += ("Transform",)
TRAINING = ("ServedBaseline", "Trainer", "EmbeddingReport", "Evaluator", "ServingModel", "Pusher")
COMPONENTS = frozenset(UPSTREAM + TRAINING)


def write_identity_folders(root, per_identity=30, identities=10):
    """Digits as ROOT/<digit>/<n>.png|jpg|gif|pgm, mixing formats, grey and RGB."""
    digits = load_digits()
    counts = dict.fromkeys(range(identities), 0)
    for pixels, label in zip(digits.images, digits.target, strict=True):
        if label >= identities or counts[label] >= per_identity:
            continue
        n = counts[label]
        counts[label] += 1
        image = Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8))
        folder = root / f"digit-{label}"
        folder.mkdir(parents=True, exist_ok=True)
        if n % 3 == 0:
            image.convert("RGB").save(folder / f"{n}.jpg", quality=95)
        elif n % 10 == 1:
            image.save(folder / f"{n}.gif")  # Transcoded to PNG by ExampleGen.
        elif n % 10 == 2:
            image.save(folder / f"{n}.pgm")
        else:
            image.save(folder / f"{n}.png")
    return root


@pytest.fixture(scope="session")
def identity_folders(tmp_path_factory):
    return write_identity_folders(tmp_path_factory.mktemp("faces"))


def write_digits_subset(directory: str, train: int, eval: int) -> str:
    """`train` and `eval` images of each digit as MNIST-format IDX files (train-, t10k-)."""
    os.makedirs(directory, exist_ok=True)
    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8)
    start = 0
    for prefix, count in (("train", train), ("t10k", eval)):
        chosen = np.concatenate(
            [np.flatnonzero(digits.target == d)[start : start + count] for d in range(10)]
        )
        start += count
        idx.write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte"), images[chosen])
        idx.write_idx(
            os.path.join(directory, f"{prefix}-labels-idx1-ubyte"),
            digits.target[chosen].astype(np.uint8),
        )
    return directory
