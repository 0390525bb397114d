"""Checks the distance-weighted sampling and the margin loss against brute-force NumPy loops
over anchors, negatives and pairs, with the same uniform draws."""

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import margin_loss as ml
from components.trainer.triplet_loss import pairwise_distances


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force_weights(labels, embeddings, cutoff=ml.CUTOFF, nonzero=ml.NONZERO_LOSS_CUTOFF):
    """[B, B] draw probabilities: 1/q(d) per negative, as powers (no logarithms)."""
    x = unit(embeddings)
    n, dim = x.shape
    weights = np.zeros((n, n))
    for anchor in range(n):
        negatives = [k for k in range(n) if labels[k] != labels[anchor]]
        distance = {k: max(float(np.linalg.norm(x[anchor] - x[k])), cutoff) for k in negatives}
        candidates = [k for k in negatives if distance[k] < nonzero]
        for k in candidates:
            q = distance[k] ** (dim - 2) * (1 - distance[k] ** 2 / 4) ** ((dim - 3) / 2)
            weights[anchor, k] = 1 / q
        if not candidates:
            for k in negatives:
                weights[anchor, k] = 1.0
        if negatives:
            weights[anchor] /= weights[anchor].sum()
    return weights


def brute_force_draw(row, uniform):
    """The first negative whose cumulative weight exceeds the draw."""
    cumulative = 0.0
    for k, weight in enumerate(row):
        cumulative += weight
        if weight > 0 and cumulative > uniform * row.sum():
            return k
    raise AssertionError("the draw fell past the last negative")


def brute_force(labels, embeddings, uniforms, alpha=ml.ALPHA, beta=ml.BETA):
    """(loss, active_fraction, drawn negatives {(anchor, positive): negative})."""
    x = unit(embeddings)
    weights = brute_force_weights(labels, embeddings)
    n = len(labels)
    terms, drawn = [], {}
    for anchor in range(n):
        if all(labels[k] == labels[anchor] for k in range(n)):
            continue  # No negative: the anchor adds no pair.
        for positive in range(n):
            if positive == anchor or labels[positive] != labels[anchor]:
                continue
            negative = brute_force_draw(weights[anchor], uniforms[anchor, positive])
            drawn[anchor, positive] = negative
            d_ap = np.linalg.norm(x[anchor] - x[positive])
            d_an = np.linalg.norm(x[anchor] - x[negative])
            terms += [max(0.0, alpha + (d_ap - beta)), max(0.0, alpha - (d_an - beta))]
    nonzero = sum(t > 0 for t in terms)
    return sum(terms) / max(nonzero, 1), nonzero / max(len(terms), 1), drawn


def batch(seed, p=4, k=4, dim=8):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(p), k)
    # Same-identity images near a shared centre, so that distances spread from 0.3 to 2.
    centres = rng.normal(size=(p, dim))
    embeddings = centres[labels] + 0.6 * rng.normal(size=(p * k, dim))
    return labels, embeddings, rng.uniform(size=(p * k, p * k))


def loss_of(labels, embeddings, uniforms, dtype=tf.float64, **settings):
    return ml.margin_loss(
        tf.constant(labels),
        tf.constant(embeddings, dtype),
        tf.constant(uniforms, dtype),
        **settings,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampling_weights_and_draws_match_brute_force(seed):
    labels, embeddings, uniforms = batch(seed)
    x = tf.math.l2_normalize(tf.constant(embeddings, tf.float64), axis=1)
    negative_mask = tf.not_equal(labels[:, None], labels[None, :])
    weights = ml.negative_weights(pairwise_distances(x), negative_mask, x.shape[-1])
    expected = brute_force_weights(labels, embeddings)
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-9, atol=1e-12)
    # Some negatives are too far to be drawn, so the cutoffs are exercised.
    assert np.any((expected == 0) & negative_mask.numpy())
    drawn = ml.sample_negatives(weights, tf.constant(uniforms)).numpy()
    _, _, expected_drawn = brute_force(labels, embeddings, uniforms)
    for (anchor, positive), negative in expected_drawn.items():
        assert drawn[anchor, positive] == negative


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", [tf.float64, tf.float32])
def test_loss_matches_brute_force(seed, dtype):
    labels, embeddings, uniforms = batch(seed)
    loss, active = loss_of(labels, embeddings, uniforms, dtype)
    expected_loss, expected_active, _ = brute_force(labels, embeddings, uniforms)
    np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-5)
    np.testing.assert_allclose(active.numpy(), expected_active, rtol=1e-6)
    assert 0.0 < expected_active < 1.0


def test_draws_follow_the_weights():
    """Many draws for one anchor: their frequencies are its row of weights."""
    labels, embeddings, _ = batch(5)
    weights = brute_force_weights(labels, embeddings)
    uniforms = np.random.default_rng(6).uniform(size=(len(labels), 20_000))
    drawn = ml.sample_negatives(tf.constant(weights), tf.constant(uniforms)).numpy()
    frequencies = np.stack([np.bincount(row, minlength=len(labels)) for row in drawn]) / 20_000
    np.testing.assert_allclose(frequencies, weights, atol=0.015)


def test_an_anchor_without_a_near_negative_draws_uniformly():
    labels = np.array([0, 0, 0, 1, 1, 1])
    embeddings = (
        np.array([[1, 0.05]] * 3 + [[-1, 0.05]] * 3, np.float64) + np.linspace(0, 0.01, 6)[:, None]
    )
    x = tf.math.l2_normalize(tf.constant(embeddings), axis=1)
    weights = ml.negative_weights(
        pairwise_distances(x), tf.not_equal(labels[:, None], labels[None, :]), 2
    ).numpy()
    np.testing.assert_allclose(weights, brute_force_weights(labels, embeddings))
    np.testing.assert_allclose(weights[0], [0, 0, 0, 1 / 3, 1 / 3, 1 / 3])


def test_gradient_matches_finite_differences_of_the_brute_force():
    labels, embeddings, uniforms = batch(3, p=3, k=3, dim=4)
    variable = tf.Variable(embeddings, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss, _ = ml.margin_loss(tf.constant(labels), variable, tf.constant(uniforms))
    gradient = tape.gradient(loss, variable).numpy()
    step, numeric = 1e-6, np.zeros_like(embeddings)
    for index in np.ndindex(*embeddings.shape):
        up, down = embeddings.copy(), embeddings.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (
            brute_force(labels, up, uniforms)[0] - brute_force(labels, down, uniforms)[0]
        ) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)
    assert np.abs(gradient).max() > 1e-3


def test_one_class_and_easy_batches_give_zero_loss_and_finite_gradients():
    one_class = (np.zeros(6, np.int64), np.eye(6, 8))
    easy = (np.array([0, 0, 0, 1, 1, 1]), np.array([[1, 0]] * 3 + [[-1, 0]] * 3, np.float64))
    for labels, embeddings in (one_class, easy):
        variable = tf.Variable(embeddings, dtype=tf.float32)
        uniforms = tf.random.stateless_uniform([6, 6], seed=[1, 2])
        with tf.GradientTape() as tape:
            loss, active = ml.margin_loss(tf.constant(labels), variable, uniforms)
        gradient = tape.gradient(loss, variable)
        assert loss.numpy() == 0.0 and active.numpy() == 0.0
        assert np.all(np.isfinite(gradient.numpy()))


def test_gradient_descent_separates_classes():
    labels, embeddings, _ = batch(4, p=4, k=8)
    variable = tf.Variable(embeddings, dtype=tf.float32)
    optimizer = tf.keras.optimizers.SGD(0.5)

    @tf.function(autograph=False)
    def step(seed):
        uniforms = tf.random.stateless_uniform([32, 32], seed=tf.stack([seed, 0]))
        with tf.GradientTape() as tape:
            loss, _ = ml.margin_loss(tf.constant(labels), variable, uniforms)
        optimizer.apply_gradients([(tape.gradient(loss, variable), variable)])
        return loss

    first = step(tf.constant(0)).numpy()
    for seed in range(1, 100):
        loss = step(tf.constant(seed))
    assert np.all(np.isfinite(variable.numpy()))
    assert loss.numpy() < 0.5 * first
