"""Checks every triplet strategy against a brute-force NumPy loop over all triplets."""

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import triplet_loss


def brute_force(strategy, labels, embeddings, margin, squared, soft):
    n = len(labels)
    d = np.sqrt(((embeddings[:, None] - embeddings[None]) ** 2).sum(-1))
    if squared:
        d = d**2

    def hinge(gap):
        return np.log1p(np.exp(gap)) if soft else max(gap + margin, 0.0)

    losses = []
    all_triplets = []
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [k for k in range(n) if labels[k] != labels[a]]
        if not positives or not negatives:
            continue
        if strategy == "batch_hard":
            losses.append(hinge(max(d[a, p] for p in positives) - min(d[a, k] for k in negatives)))
            continue
        for p in positives:
            if strategy == "semi_hard":
                farther = [d[a, k] for k in negatives if d[a, k] > d[a, p]]
                negative = min(farther) if farther else max(d[a, k] for k in negatives)
                losses.append(hinge(d[a, p] - negative))
            else:
                all_triplets.extend(hinge(d[a, p] - d[a, k]) for k in negatives)
    if strategy == "batch_all":
        active = [x for x in all_triplets if x > 0]
        return (
            sum(active) / len(active) if active else 0.0,
            len(active) / len(all_triplets) if all_triplets else 0.0,
        )
    if not losses:
        return 0.0, 0.0
    return float(np.mean(losses)), float(np.mean([x > 0 for x in losses]))


def random_batch(seed, n=24, classes=5, dim=8):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    embeddings = rng.normal(size=(n, dim))
    return labels, embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


CASES = [
    (s, sq, soft)
    for s in triplet_loss.STRATEGIES
    for sq in (False, True)
    for soft in (False, True)
    if not (s == "batch_all" and soft)
]


@pytest.mark.parametrize("strategy,squared,soft", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force(strategy, squared, soft, seed):
    labels, embeddings = random_batch(seed)
    loss, active = triplet_loss.get(strategy)(
        tf.constant(labels),
        tf.constant(embeddings, tf.float32),
        margin=0.2,
        squared=squared,
        soft=soft,
    )
    expected_loss, expected_active = brute_force(strategy, labels, embeddings, 0.2, squared, soft)
    np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(active.numpy(), expected_active, rtol=1e-4, atol=1e-5)


def test_identities_with_one_image_are_not_anchors():
    labels = np.array([0, 0, 1, 2, 3, 3, 4])
    _, embeddings = random_batch(3, n=7)
    for strategy in triplet_loss.STRATEGIES:
        loss, _ = triplet_loss.get(strategy)(
            tf.constant(labels), tf.constant(embeddings, tf.float32)
        )
        expected, _ = brute_force(strategy, labels, embeddings, 0.2, False, False)
        np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("strategy", triplet_loss.STRATEGIES)
def test_one_class_and_all_easy_batches_give_zero_loss_and_finite_gradients(strategy):
    one_class = (np.zeros(6, np.int64), np.eye(6, 8))
    # Two tight, far-apart clusters: every triplet already satisfies the margin.
    easy = (np.array([0, 0, 0, 1, 1, 1]), np.array([[1, 0]] * 3 + [[-1, 0]] * 3, np.float64))
    for labels, embeddings in (one_class, easy):
        variable = tf.Variable(embeddings, dtype=tf.float32)
        with tf.GradientTape() as tape:
            loss, active = triplet_loss.get(strategy)(tf.constant(labels), variable)
        gradient = tape.gradient(loss, variable)
        assert loss.numpy() == 0.0 and active.numpy() == 0.0
        assert np.all(np.isfinite(gradient.numpy()))


@pytest.mark.parametrize("strategy", triplet_loss.STRATEGIES)
def test_gradient_descent_separates_classes(strategy):
    labels, embeddings = random_batch(4, n=32, classes=4)
    variable = tf.Variable(embeddings, dtype=tf.float32)
    optimizer = tf.keras.optimizers.SGD(0.5)

    @tf.function(autograph=False)
    def step():
        with tf.GradientTape() as tape:
            loss, _ = triplet_loss.get(strategy)(
                tf.constant(labels), tf.math.l2_normalize(variable, 1)
            )
        optimizer.apply_gradients([(tape.gradient(loss, variable), variable)])
        return loss

    first = step().numpy()
    for _ in range(99):
        loss = step()
    assert np.all(np.isfinite(variable.numpy()))
    assert loss.numpy() < 0.5 * first


def test_large_batch_fits_in_quadratic_memory():
    labels, embeddings = random_batch(5, n=2048, classes=64, dim=16)
    loss, _ = triplet_loss.semi_hard(tf.constant(labels), tf.constant(embeddings, tf.float32))
    assert np.isfinite(loss.numpy())


def test_unknown_strategy_is_rejected():
    with pytest.raises(ValueError, match="unknown triplet strategy"):
        triplet_loss.get("hardest")


@pytest.mark.parametrize("soft", [False, True])
def test_random_triplets_loss_matches_numpy(soft):
    """The notebook's loss: max(mean((a-p)^2) - mean((a-n)^2) + margin, 0), batch-averaged."""
    rng = np.random.default_rng(7)
    anchor, positive, negative = (rng.uniform(size=(32, 16)) for _ in range(3))
    positive[:8] = anchor[:8]  # some triplets already satisfied (zero loss)
    loss, active = triplet_loss.random_triplets(
        *(tf.constant(x, tf.float32) for x in (anchor, positive, negative)), margin=0.2, soft=soft
    )
    gap = ((anchor - positive) ** 2).mean(1) - ((anchor - negative) ** 2).mean(1)
    losses = np.log1p(np.exp(gap)) if soft else np.maximum(gap + 0.2, 0.0)
    np.testing.assert_allclose(loss.numpy(), losses.mean(), rtol=1e-5)
    np.testing.assert_allclose(active.numpy(), (losses > 0).mean(), rtol=1e-6)
    assert 0.0 < active.numpy() < 1.0 or soft
