"""Training stops once the triplet loss is satisfied, and batch norm is re-estimated."""

import dataclasses
import subprocess
import sys

import numpy as np
import tensorflow as tf

from components.trainer import fit, satisfied
from components.trainer.fit_test import TINY

# fit_test's tiny network and batches, with a margin that identical images meet quickly.
EASY = dataclasses.replace(TINY, margin=0.05, epochs=6, stop_when_satisfied=True)


def identical_images(identities=4, per_identity=8):
    """Every image of an identity is the same: each positive pair is at distance 0, so a small
    margin is met as soon as the identities' embeddings are that far apart."""
    rng = np.random.default_rng(0)
    patterns = rng.normal(size=(identities, 8, 8, 1)).astype(np.float32)
    labels = np.repeat(np.arange(identities), per_identity).astype(np.int64)
    return patterns[labels], labels


def first_batch_norm(network):
    return next(
        layer
        for layer in network.submodules
        if isinstance(layer, tf.keras.layers.BatchNormalization)
    )


def moving_mean_error(network, images):
    """How far the first batch norm's running mean is from the mean of its input over `images`."""
    norm = first_batch_norm(network)
    inputs = tf.keras.Model(network.inputs, norm.input)(images)
    mean = np.mean(inputs.numpy(), axis=(0, 1, 2))
    return float(np.max(np.abs(norm.moving_mean.numpy() - mean)))


def test_training_stops_after_the_first_satisfied_epoch_and_says_so(capsys):
    images, labels = identical_images()
    examples = tf.data.Dataset.from_tensor_slices((images, labels))
    result = fit.fit(EASY, examples, None, np.ones(4, bool), len(labels))
    losses = result.history["loss"]
    assert 0 < result.satisfied_epoch == result.epochs_run < EASY.epochs
    assert losses[-1] == 0.0 and result.history["active_triplets"][-1] == 0.0
    assert all(loss > 0 for loss in losses[:-1])  # It stopped at the first satisfied epoch.
    assert f"stopped after epoch {result.epochs_run}: the triplet loss was 0" in (
        capsys.readouterr().out
    )
    kept_going = fit.fit(
        dataclasses.replace(EASY, stop_when_satisfied=False),
        examples,
        None,
        np.ones(4, bool),
        len(labels),
    )
    assert kept_going.epochs_run == EASY.epochs and kept_going.satisfied_epoch == 0


def test_recalibration_moves_batch_norm_statistics_to_the_training_images():
    images, labels = identical_images()
    network = tf.keras.Sequential(
        [
            tf.keras.Input((8, 8, 1)),
            tf.keras.layers.Conv2D(4, 3),
            tf.keras.layers.BatchNormalization(),
        ]
    )
    before = moving_mean_error(network, images)
    batches = tf.data.Dataset.from_tensor_slices(images).shuffle(32, seed=0).repeat().batch(12)
    assert satisfied.recalibrate_batch_norm(network, batches) == 1
    after = moving_mean_error(network, images)
    assert after < 0.1 * before
    assert first_batch_norm(network).momentum == 0.99  # Training's momentum is back.
    assert (
        satisfied.recalibrate_batch_norm(tf.keras.Sequential([tf.keras.Input((2,))]), batches) == 0
    )


MIRRORED = """
import numpy as np
import tensorflow as tf
import components  # noqa: F401
from components.trainer import satisfied

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    layers = tf.keras.layers
    network = tf.keras.Sequential(
        [tf.keras.Input((8, 8, 1)), layers.Conv2D(4, 3), layers.BatchNormalization()]
    )
images = np.random.default_rng(0).normal(3.0, 1.0, size=(64, 8, 8, 1)).astype(np.float32)
batches = tf.data.Dataset.from_tensor_slices(images).repeat().batch(16)
satisfied.recalibrate_batch_norm(network, batches)
print("MOVED", bool(np.all(network.layers[-1].moving_mean.numpy() != 0)))
"""


def test_recalibration_updates_mirrored_batch_norm_variables():
    """As `fit` calls it after training under MirroredStrategy (2+ GPUs): outside the strategy's
    scope, on variables mirrored over two devices (here two logical CPUs)."""
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=300
    )
    assert "MOVED True" in done.stdout, done.stderr[-2000:]


def test_the_stop_names_the_loss_and_what_it_counts(capsys):
    stopper = satisfied.StopWhenSatisfied("multi-similarity", "pairs")
    stopper.set_model(tf.keras.Sequential([tf.keras.layers.Dense(1)]))
    stopper.on_epoch_end(0, {"active_triplets": 0.01})
    assert stopper.satisfied_epoch == 0
    stopper.on_epoch_end(1, {"active_triplets": 0.0})
    stopper.on_train_end()
    assert stopper.satisfied_epoch == 2 and stopper.model.stop_training
    assert "epoch 2: the multi-similarity loss was 0 on every training batch (no active pairs" in (
        capsys.readouterr().out
    )
