"""Checks the multi-similarity loss against a brute-force NumPy loop over anchors and pairs."""

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import multi_similarity_loss as ms


def brute_force(labels, embeddings, alpha=ms.ALPHA, beta=ms.BETA, base=ms.BASE, epsilon=ms.EPSILON):
    """(loss, active_fraction), one anchor and one pair at a time, in float64."""
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    n = len(labels)
    total, mined, pairs = 0.0, 0, 0
    for anchor in range(n):
        similarity = {j: float(np.dot(x[anchor], x[j])) for j in range(n) if j != anchor}
        positives = [j for j in similarity if labels[j] == labels[anchor]]
        negatives = [j for j in similarity if labels[j] != labels[anchor]]
        pairs += len(positives) + len(negatives)
        kept_negatives = [
            j
            for j in negatives
            if positives and similarity[j] > min(similarity[p] for p in positives) - epsilon
        ]
        kept_positives = [
            j
            for j in positives
            if negatives and similarity[j] < max(similarity[k] for k in negatives) + epsilon
        ]
        mined += len(kept_positives) + len(kept_negatives)
        positive_sum = sum(np.exp(-alpha * (similarity[j] - base)) for j in kept_positives)
        negative_sum = sum(np.exp(beta * (similarity[j] - base)) for j in kept_negatives)
        total += np.log(1.0 + positive_sum) / alpha + np.log(1.0 + negative_sum) / beta
    return total / n, mined / max(pairs, 1)


def p_by_k(seed, p=4, k=3, dim=6):
    rng = np.random.default_rng(seed)
    return np.repeat(np.arange(p), k), rng.normal(size=(p * k, dim))


def loose_labels(seed, n=20, classes=6, dim=8):
    """Labels drawn at random: some identities have one image (no positive pair)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, classes, n), rng.normal(size=(n, dim))


@pytest.mark.parametrize("batch", [p_by_k, loose_labels])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force(batch, seed):
    labels, embeddings = batch(seed)
    loss, active = ms.multi_similarity(tf.constant(labels), tf.constant(embeddings, tf.float32))
    expected_loss, expected_active = brute_force(labels, embeddings)
    np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(active.numpy(), expected_active, rtol=1e-5)
    assert 0.0 < expected_active < 1.0  # The mining keeps some pairs and drops others.


@pytest.mark.parametrize(
    "settings", [{}, {"alpha": 1.0, "beta": 20.0, "base": 0.2, "epsilon": 0.3}]
)
def test_gradient_matches_finite_differences_of_the_brute_force(settings):
    labels, embeddings = p_by_k(3, p=3, k=3, dim=4)
    variable = tf.Variable(embeddings, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss, _ = ms.multi_similarity(tf.constant(labels), variable, **settings)
    gradient = tape.gradient(loss, variable).numpy()
    step, numeric = 1e-6, np.zeros_like(embeddings)
    for index in np.ndindex(*embeddings.shape):
        up, down = embeddings.copy(), embeddings.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (
            brute_force(labels, up, **settings)[0] - brute_force(labels, down, **settings)[0]
        ) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)
    assert np.abs(gradient).max() > 1e-3


def test_one_class_and_easy_batches_give_zero_loss_and_finite_gradients():
    one_class = (np.zeros(6, np.int64), np.eye(6, 8))
    easy = (np.array([0, 0, 0, 1, 1, 1]), np.array([[1, 0]] * 3 + [[-1, 0]] * 3, np.float64))
    for labels, embeddings in (one_class, easy):
        variable = tf.Variable(embeddings, dtype=tf.float32)
        with tf.GradientTape() as tape:
            loss, active = ms.multi_similarity(tf.constant(labels), variable)
        gradient = tape.gradient(loss, variable)
        assert loss.numpy() == 0.0 and active.numpy() == 0.0
        assert np.all(np.isfinite(gradient.numpy()))


def test_gradient_descent_separates_classes():
    labels, embeddings = loose_labels(4, n=32, classes=4)
    variable = tf.Variable(embeddings, dtype=tf.float32)
    # The loss averages over anchors and each pair's weight is a softmax share: small steps.
    optimizer = tf.keras.optimizers.SGD(5.0)

    @tf.function(autograph=False)
    def step():
        with tf.GradientTape() as tape:
            loss, _ = ms.multi_similarity(tf.constant(labels), variable)
        optimizer.apply_gradients([(tape.gradient(loss, variable), variable)])
        return loss

    first = step().numpy()
    for _ in range(99):
        loss = step()
    assert np.all(np.isfinite(variable.numpy()))
    assert loss.numpy() < 0.5 * first
