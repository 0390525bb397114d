"""Checks the ArcFace loss against a brute-force NumPy loop over images and class proxies."""

import math

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import arcface_loss


def brute_force(
    labels, embeddings, class_weights, scale=arcface_loss.SCALE, margin=arcface_loss.MARGIN
):
    """(loss, active_fraction), one image at a time, with angles from arccos, in float64; an
    image is active when its widened target logit is not above every other one."""
    losses, misclassified = [], []
    for x, label in zip(embeddings, labels, strict=True):
        x = x / np.linalg.norm(x)
        logits = []
        for c, w in enumerate(class_weights):
            cosine = float(np.dot(x, w / np.linalg.norm(w)))
            if c == label:
                theta = math.acos(cosine)
                if theta + margin <= math.pi:
                    cosine = math.cos(theta + margin)
                else:
                    cosine -= margin * math.sin(margin)
            logits.append(scale * cosine)
        top = max(logits)
        log_sum = top + math.log(sum(math.exp(z - top) for z in logits))
        losses.append(log_sum - logits[label])
        misclassified.append(logits[label] <= max(z for c, z in enumerate(logits) if c != label))
    return float(np.mean(losses)), float(np.mean(misclassified))


def batch(seed, n=12, classes=5, dim=6):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    class_weights = rng.normal(size=(classes, dim))
    embeddings = rng.normal(size=(n, dim))
    # Half the images near their proxy (the margin met), one nearly opposite it: theta + m
    # passes pi there.
    near = np.arange(n) % 2 == 1
    embeddings[near] = class_weights[labels[near]] + 0.3 * rng.normal(size=(near.sum(), dim))
    embeddings[0] = -class_weights[labels[0]] + 0.05 * rng.normal(size=dim)
    return labels, embeddings, class_weights


def loss_of(labels, embeddings, class_weights, dtype=tf.float32, **settings):
    return arcface_loss.arcface(
        tf.constant(labels),
        tf.constant(embeddings, dtype),
        tf.constant(class_weights, dtype),
        **settings,
    )


@pytest.mark.parametrize("settings", [{}, {"scale": 30.0, "margin": 0.35}, {"margin": 0.0}])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force(settings, seed):
    labels, embeddings, class_weights = batch(seed)
    loss, active = loss_of(labels, embeddings, class_weights, **settings)
    expected_loss, expected_active = brute_force(labels, embeddings, class_weights, **settings)
    np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-4)
    np.testing.assert_allclose(active.numpy(), expected_active, rtol=1e-6)
    assert 0.0 < expected_active < 1.0


def test_margin_zero_is_the_scaled_softmax_and_a_margin_raises_the_loss():
    labels, embeddings, class_weights = batch(4)
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    w = class_weights / np.linalg.norm(class_weights, axis=1, keepdims=True)
    softmax = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, 30.0 * x @ w.T).numpy()
    plain, _ = loss_of(labels, embeddings, class_weights, tf.float64, scale=30.0, margin=0.0)
    np.testing.assert_allclose(plain.numpy(), softmax.mean(), rtol=1e-9)
    widened, _ = loss_of(labels, embeddings, class_weights, tf.float64, scale=30.0)
    assert widened.numpy() > plain.numpy()


def test_gradients_match_finite_differences_of_the_brute_force():
    labels, embeddings, class_weights = batch(3, n=6, classes=3, dim=4)
    settings = {"scale": 8.0}  # A smaller scale keeps the softmax away from saturation.
    x, w = tf.Variable(embeddings, dtype=tf.float64), tf.Variable(class_weights, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss, _ = arcface_loss.arcface(tf.constant(labels), x, w, **settings)
    gradients = [g.numpy() for g in tape.gradient(loss, [x, w])]
    step = 1e-6
    for which, gradient in enumerate(gradients):
        arrays = [embeddings, class_weights]
        numeric = np.zeros_like(arrays[which])
        for index in np.ndindex(*numeric.shape):
            up, down = [a.copy() for a in arrays], [a.copy() for a in arrays]
            up[which][index] += step
            down[which][index] -= step
            numeric[index] = (
                brute_force(labels, *up, **settings)[0] - brute_force(labels, *down, **settings)[0]
            ) / (2 * step)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)
        assert np.abs(gradient).max() > 1e-3


def test_gradient_descent_on_embeddings_and_proxies_separates_classes():
    labels, embeddings, class_weights = batch(5, n=32, classes=4, dim=8)
    x, w = tf.Variable(embeddings, dtype=tf.float32), tf.Variable(class_weights, dtype=tf.float32)
    optimizer = tf.keras.optimizers.SGD(0.05)

    @tf.function(autograph=False)
    def step():
        with tf.GradientTape() as tape:
            loss, _ = arcface_loss.arcface(tf.constant(labels), x, w)
        optimizer.apply_gradients(zip(tape.gradient(loss, [x, w]), [x, w], strict=True))
        return loss

    first = step().numpy()
    for _ in range(99):
        loss = step()
    assert np.all(np.isfinite(x.numpy())) and np.all(np.isfinite(w.numpy()))
    assert loss.numpy() < 0.1 * first
