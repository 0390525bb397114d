"""The streaming samplers on synthetic data: P x K batches and random triplets."""

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import data

TRIPLET = ("anchor", "positive", "negative")


def synthetic(counts: list[int], size: int = 2) -> tuple[tf.data.Dataset, np.ndarray]:
    """Identity i has counts[i] images; every pixel of an image holds its label (to check
    triplets without labels). Returns the (image, label id) stream and the labels."""
    labels = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    images = np.broadcast_to(labels[:, None, None, None], (len(labels), size, size, 1))
    return tf.data.Dataset.from_tensor_slices((images.astype(np.float32), labels)), labels


def trainable_for(counts: list[int]) -> np.ndarray:
    names = [str(i) for i in range(len(counts))]
    return data.trainable_mask(dict(zip(names, counts, strict=True)), names)


@pytest.mark.parametrize(
    "counts,p,k",
    [
        # 10 identities (one a singleton, left out), every batch holds 9 of the 9 others.
        ([50] * 9 + [1], 9, 4),
        # 1,000 identities of 1 to 5 images (K = 4 exceeds some: their images repeat).
        ([1 + i % 5 for i in range(1000)], 32, 4),
    ],
)
def test_p_x_k_batches_hold_p_identities_of_k_images_and_no_singletons(counts, p, k):
    dataset, _ = synthetic(counts)
    trainable = trainable_for(counts)
    singletons = {i for i, c in enumerate(counts) if c < 2}
    batches = data.class_balanced_batches(dataset, trainable, p, k, seed=0, shuffle_buffer=500)
    seen = set()
    for images, labels in batches.take(30):
        assert images.shape == (p * k, 2, 2, 1) and labels.shape == (p * k,)
        identities, per_identity = np.unique(labels.numpy(), return_counts=True)
        assert len(identities) == p and set(per_identity) == {k}
        np.testing.assert_array_equal(images.numpy()[:, 0, 0, 0], labels.numpy())
        seen.update(identities.tolist())
    assert not seen & singletons
    if len(counts) == 10:
        assert seen == set(range(9))


def test_singletons_are_left_out_with_a_logged_count(caplog):
    counts = {"a": 3, "b": 1, "c": 2, "d": 1}
    with caplog.at_level("WARNING"):
        keep = data.trainable_mask(counts, ["a", "b", "c", "d", "unseen"])
    np.testing.assert_array_equal(keep, [True, False, True, False, False])
    assert "Leaving out 3 identities" in caplog.text
    with pytest.raises(ValueError, match="at least 2 identities"):
        data.trainable_mask({"a": 5, "b": 1}, ["a", "b"])


def test_p_larger_than_the_identities_is_an_error():
    dataset, _ = synthetic([3, 3])
    with pytest.raises(ValueError, match="trainable identities"):
        data.class_balanced_batches(dataset, np.array([True, True]), 3, 2, seed=0)


def test_random_triplets_pair_one_identity_against_another():
    counts = [40, 1, 30, 20, 10]
    dataset, _ = synthetic(counts)
    keep = trainable_for(counts)
    batches = data.random_triplet_batches(dataset, keep, 64, seed=1, shuffle_buffer=200)
    anchors = []
    for batch in batches.take(10):
        anchor, positive, negative = (batch[n].numpy()[:, 0, 0, 0] for n in TRIPLET)
        assert len(anchor) == 64
        np.testing.assert_array_equal(anchor, positive)
        assert np.all(anchor != negative)
        assert 1 not in anchor and 1 not in negative  # the singleton is left out
        anchors.extend(anchor)
    assert set(anchors) == {0, 2, 3, 4}
    # One pass without repeat (evaluation): deterministic, at most one anchor per image pair.
    once = data.random_triplet_batches(dataset, None, 16, seed=1, shuffle_buffer=200, repeat=False)
    first = [b["anchor"].numpy() for b in once]
    second = [b["anchor"].numpy() for b in once]
    assert sum(len(b) for b in first) <= sum(counts) // 2
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(second))


def test_shuffle_buffer_fits_the_memory_budget():
    assert data.shuffle_buffer_size((28, 28, 1)) == 10_000
    assert data.shuffle_buffer_size((96, 96, 3)) * 96 * 96 * 3 * 4 <= 256 << 20
