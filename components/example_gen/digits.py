"""Writes scikit-learn's bundled handwritten digits as MNIST-format IDX files (no download)."""

import os

import numpy as np
import tensorflow as tf

from components.example_gen import idx

EVAL_EVERY = 5  # Every 5th image of each digit goes to eval: a stratified 80/20 split.


def materialize(directory: str) -> str:
    """Writes train/t10k IDX files for the 1,797 8x8 digits into `directory`; returns it.

    `directory` may be local, gs:// or s3:// (tf.io.gfile).
    Rewrites only when the files are missing, so re-runs keep ExampleGen's cache.
    """
    from sklearn.datasets import load_digits

    names = [
        f"{prefix}-{kind}"
        for prefix in ("train", "t10k")
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    ]
    if all(tf.io.gfile.exists(os.path.join(directory, n)) for n in names):
        return directory
    tf.io.gfile.makedirs(directory)
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    is_eval = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        is_eval[np.flatnonzero(labels == digit)[::EVAL_EVERY]] = True
    for prefix, mask in (("train", ~is_eval), ("t10k", is_eval)):
        idx.write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte"), images[mask])
        idx.write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte"), labels[mask])
    return directory
