"""Figures, projector files and the training-figures callback write real, non-empty files."""

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from components.reporting import figures, projector, training_figures


def clustered(n=120, identities=4, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, identities, n)
    centres = rng.normal(size=(identities, dim)) * 3
    embeddings = centres[labels] + rng.normal(size=(n, dim))
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True), labels


def assert_png(path):
    assert os.path.getsize(path) > 1000
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 100


def test_pca_keeps_the_direction_of_largest_variance():
    rng = np.random.default_rng(1)
    points = np.c_[rng.normal(size=200) * 10, rng.normal(size=200), np.zeros(200)]
    projected = figures.pca_2d(points)
    assert projected.shape == (200, 2)
    assert abs(np.corrcoef(projected[:, 0], points[:, 0])[0, 1]) > 0.99


def test_every_figure_is_a_png(tmp_path):
    embeddings, labels = clustered()
    images = np.random.default_rng(2).random((3, 16, 16, 1))
    paths = [
        figures.embedding_projection(embeddings, labels, str(tmp_path / "p.png"), "title"),
        figures.training_progress(
            embeddings,
            labels,
            {"loss": [0.3, 0.2], "val_loss": [0.4, 0.3]},
            str(tmp_path / "t.png"),
            2,
        ),
        figures.triplet_samples(images, images, images, str(tmp_path / "s.png")),
        figures.roc_curve([0, 1e-3, 0.1, 1], [0, 0.5, 0.9, 1], 0.95, str(tmp_path / "r.png")),
        figures.distance_histograms(
            np.random.rand(50), np.random.rand(50) + 0.5, 0.6, str(tmp_path / "h.png"), 1e-3
        ),
        figures.per_identity_precision(["a", "b", "c"], [0.9, 0.2, 0.5], str(tmp_path / "w.png")),
    ]
    for path in paths:
        assert_png(path)


def test_projector_files(tmp_path):
    embeddings, labels = clustered(n=10)
    images = np.random.default_rng(3).random((10, 8, 8))
    written = projector.write_projector(str(tmp_path), embeddings, labels, images)
    assert {os.path.basename(p) for p in written} == {
        "vectors.tsv",
        "metadata.tsv",
        "sprite.png",
        "projector_config.pbtxt",
    }
    assert np.loadtxt(tmp_path / "vectors.tsv").shape == (10, 8)
    assert (tmp_path / "metadata.tsv").read_text().split() == [str(x) for x in labels]
    with Image.open(tmp_path / "sprite.png") as sprite:
        assert sprite.size == (4 * projector.THUMBNAIL, 4 * projector.THUMBNAIL)


def test_training_figures_callback_draws_every_epoch(tmp_path):
    rng = np.random.default_rng(4)
    images = rng.random((40, 8, 8, 1)).astype("float32")
    labels = np.repeat(np.arange(4), 10)
    model = tf.keras.Sequential(
        [tf.keras.Input((8, 8, 1)), tf.keras.layers.Flatten(), tf.keras.layers.Dense(3)]
    )
    model.compile(optimizer="sgd", loss="mse")
    callback = training_figures.TrainingFigures(str(tmp_path), (images, labels), (images, labels))
    model.fit(images, rng.random((40, 3)), epochs=2, verbose=0, callbacks=[callback])
    for name in ("triplet_samples.png", "epoch_01.png", "epoch_02.png"):
        assert_png(tmp_path / name)
