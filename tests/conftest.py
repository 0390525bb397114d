"""Shared fixtures: small real datasets written to disk the way users provide them."""

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits


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
