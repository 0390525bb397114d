"""A Keras callback drawing, each epoch, held-out embeddings in 2-D and the loss curves so far."""

import os

import numpy as np
import tensorflow as tf

from components.reporting import figures

SAMPLE_SIZE = 1000
TRIPLET_ROWS = 6


def take_sample(dataset: tf.data.Dataset, count: int = SAMPLE_SIZE):
    """Up to `count` (images, labels) from a dataset of (image batch, label batch)."""
    images, labels = [], []
    for batch_images, batch_labels in dataset:
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
        if sum(len(x) for x in labels) >= count:
            break
    return np.concatenate(images)[:count], np.concatenate(labels)[:count]


def sample_triplets(images, labels, rows: int = TRIPLET_ROWS, seed: int = 0):
    """Anchors with a random positive (same identity) and negative (other identity)."""
    rng = np.random.default_rng(seed)
    anchors, positives, negatives = [], [], []
    for anchor in rng.permutation(len(labels)):
        same = np.flatnonzero((labels == labels[anchor]) & (np.arange(len(labels)) != anchor))
        other = np.flatnonzero(labels != labels[anchor])
        if len(same) and len(other):
            anchors.append(images[anchor])
            positives.append(images[rng.choice(same)])
            negatives.append(images[rng.choice(other)])
        if len(anchors) == rows:
            break
    return anchors, positives, negatives


class TrainingFigures(tf.keras.callbacks.Callback):
    """Writes triplet_samples.png once and epoch_NN.png after every epoch into `directory`."""

    def __init__(self, directory: str, eval_sample, train_sample, embed=None, sample="eval"):
        """`eval_sample`: (images, labels) drawn each epoch; `sample` names it ("eval", or
        "validation" for the Trainer's held-back slice)."""
        super().__init__()
        self.sample = sample
        self.directory = directory
        self.eval_images, self.eval_labels = eval_sample
        self.train_images, self.train_labels = train_sample
        self.embed = embed
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs=None):
        tf.io.gfile.makedirs(self.directory)
        anchors, positives, negatives = sample_triplets(self.train_images, self.train_labels)
        if anchors:
            figures.triplet_samples(
                anchors, positives, negatives, os.path.join(self.directory, "triplet_samples.png")
            )

    def on_epoch_end(self, epoch, logs=None):
        for name in ("loss", "val_loss"):
            if logs and name in logs:
                self.history.setdefault(name, []).append(float(logs[name]))
        network = getattr(self.model, "embedding_network", self.model)
        embed = self.embed or (lambda images: network(images, training=False))
        embeddings = np.concatenate(
            [
                np.asarray(embed(self.eval_images[i : i + 256]))
                for i in range(0, len(self.eval_images), 256)
            ]
        )
        figures.training_progress(
            embeddings,
            self.eval_labels,
            self.history,
            os.path.join(self.directory, f"epoch_{epoch + 1:02d}.png"),
            epoch + 1,
            self.sample,
        )
