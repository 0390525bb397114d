"""tf.data input: class-balanced P x K batches of transformed images, streamed from TFRecords."""

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging

from components import keys
from components.example_io import without_autotuning
from components.transform import preprocessing

AUTOTUNE = tf.data.AUTOTUNE


def read_transformed(
    file_patterns: list[str],
    tf_transform_output: tft.TFTransformOutput,
    shuffle_files: bool,
    seed: int,
) -> tf.data.Dataset:
    """(image, label id) pairs from Transform's gzipped TFRecords."""
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no transformed examples match {file_patterns}")
    feature_spec = tf_transform_output.transformed_feature_spec()
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_files:
        dataset = dataset.shuffle(len(files), seed=seed)
    dataset = dataset.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
        num_parallel_calls=AUTOTUNE,
        deterministic=not shuffle_files,
    )

    def parse(records):
        features = tf.io.parse_example(records, feature_spec)
        labels = tf.reshape(features[keys.LABEL], [-1])
        return features[keys.IMAGE], labels

    return dataset.batch(512).map(parse, num_parallel_calls=AUTOTUNE).unbatch()


def identity_counts(tf_transform_output: tft.TFTransformOutput) -> dict[str, int]:
    """Train images per identity, from the vocabulary Transform stored with frequencies."""
    path = tf_transform_output.vocabulary_file_by_name(preprocessing.LABEL_COUNTS)
    counts = {}
    with tf.io.gfile.GFile(path) as f:
        for line in f:
            count, _, identity = line.rstrip("\n").partition(" ")
            counts[identity] = int(count)
    return counts


def trainable_mask(counts: dict[str, int], vocabulary: list[str]) -> np.ndarray:
    """A boolean per label id: True for identities with at least two train images.

    Identities with fewer (they can be no anchor: no positive) are left out, with a logged count.
    """
    keep = np.array([counts.get(identity, 0) >= 2 for identity in vocabulary], dtype=bool)
    left_out = int((~keep).sum())
    if left_out:
        logging.warning("Leaving out %d identities with fewer than 2 train images", left_out)
    if keep.sum() < 2:
        raise ValueError("training needs at least 2 identities with 2 or more images each")
    return keep


def trainable_identities(tf_transform_output: tft.TFTransformOutput) -> np.ndarray:
    """trainable_mask over Transform's label vocabulary (label id order)."""
    vocabulary = tf_transform_output.vocabulary_by_name(preprocessing.LABEL_VOCABULARY)
    return trainable_mask(identity_counts(tf_transform_output), [v.decode() for v in vocabulary])


def image_bytes(image_shape) -> int:
    """Memory of one transformed image (float32)."""
    return 4 * int(np.prod(image_shape))


def shuffle_buffer_size(image_shape, budget_bytes: int = 256 << 20, most: int = 10_000) -> int:
    """Images a shuffle buffer holds: up to `most`, within about `budget_bytes` of float32."""
    return int(max(256, min(most, budget_bytes // max(image_bytes(image_shape), 1))))


def _known_identities(dataset: tf.data.Dataset, trainable: np.ndarray | None) -> tf.data.Dataset:
    """Examples with a label id (not -1), and of a trainable identity when a mask is given."""
    if trainable is None:
        return dataset.filter(lambda image, label: label >= 0)
    keep = tf.constant(trainable)
    return dataset.filter(
        lambda image, label: tf.logical_and(label >= 0, tf.gather(keep, tf.maximum(label, 0)))
    )


def _distinct_identities(groups: tf.data.Dataset, p: int) -> tf.data.Dataset:
    """Keeps groups so that each run of p kept groups has p different identities.

    A group whose identity is already in the batch being assembled is skipped (the stream is
    endless, so its images come round again); the state is only the p labels of that batch.
    """
    empty = tf.fill([p], tf.constant(-1, tf.int64))

    def step(state, group):
        labels_in_batch, count = state
        label = tf.cast(group[1][0], tf.int64)
        fresh = tf.logical_not(tf.reduce_any(tf.equal(labels_in_batch, label)))
        added = tf.tensor_scatter_nd_update(labels_in_batch, [[count]], [label])
        count = tf.where(fresh, count + 1, count)
        full = tf.equal(count, p)
        labels_in_batch = tf.where(full, empty, tf.where(fresh, added, labels_in_batch))
        return (labels_in_batch, tf.where(full, 0, count)), (group, fresh)

    return (
        groups.scan((empty, tf.constant(0)), step)
        .filter(lambda group, fresh: fresh)
        .map(lambda group, fresh: group)
    )


def class_balanced_batches(
    dataset: tf.data.Dataset,
    trainable: np.ndarray,
    identities_per_batch: int,
    images_per_identity: int,
    seed: int,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """Endless batches of P different identities x K images each, grouped on the fly.

    Memory holds the shuffle buffer plus at most K - 1 waiting images per identity, so this
    works for 10 classes and for 10,000 identities alike. An identity with fewer than K train
    images fills its group from the next pass over the (repeated) stream, so it repeats images.
    P must not exceed the number of trainable identities.
    """
    p, k = identities_per_batch, images_per_identity
    if p > int(np.sum(trainable)):
        raise ValueError(
            f"{p} identities per batch, but only {int(np.sum(trainable))} trainable identities"
        )
    groups = (
        _known_identities(dataset, trainable)
        .shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .group_by_window(
            key_func=lambda image, label: tf.cast(label, tf.int64),
            reduce_func=lambda key, group: group.batch(k, drop_remainder=True),
            window_size=k,
        )
        .shuffle(4 * p, seed=seed)
    )
    return (
        _distinct_identities(groups, p)
        .batch(p, drop_remainder=True)
        .map(
            lambda images, labels: (
                tf.reshape(images, [p * k, *images.shape[2:]]),
                tf.reshape(labels, [p * k]),
            ),
            num_parallel_calls=AUTOTUNE,
        )
        .prefetch(AUTOTUNE)
        .apply(without_autotuning)
    )


def random_triplet_batches(
    dataset: tf.data.Dataset,
    trainable: np.ndarray | None,
    triplets_per_batch: int,
    seed: int,
    shuffle_buffer: int = 10_000,
    repeat: bool = True,
) -> tf.data.Dataset:
    """Batches of random triplets {"anchor", "positive", "negative"}: the notebook's sampling.

    Anchor and positive are two images of one identity, paired as the shuffled stream brings
    them (at most one image per identity waits); the negative comes from a second, differently
    shuffled stream, and a triplet whose negative has the anchor's identity is dropped. With
    `repeat` the batches are endless and drawn afresh each pass; without it (evaluation) one
    deterministic pass, the last batch possibly smaller.
    """
    known = _known_identities(dataset, trainable)

    def stream(stream_seed):
        shuffled = known.shuffle(shuffle_buffer, seed=stream_seed, reshuffle_each_iteration=repeat)
        return shuffled.repeat() if repeat else shuffled

    pairs = stream(seed).group_by_window(
        key_func=lambda image, label: tf.cast(label, tf.int64),
        reduce_func=lambda key, group: group.batch(2, drop_remainder=True),
        window_size=2,
    )
    triplets = (
        tf.data.Dataset.zip((pairs, stream(seed + 1)))
        .filter(lambda pair, negative: tf.not_equal(pair[1][0], negative[1]))
        .map(
            lambda pair, negative: {
                "anchor": pair[0][0],
                "positive": pair[0][1],
                "negative": negative[0],
            }
        )
    )
    batches = triplets.batch(triplets_per_batch, drop_remainder=repeat).prefetch(AUTOTUNE)
    return without_autotuning(batches)


def evaluation_batches(
    dataset: tf.data.Dataset, batch_size: int, seed: int = 0, shuffle_buffer: int = 2048
) -> tf.data.Dataset:
    """Eval images with a known identity, in a fixed shuffled order (the same every epoch).

    Shuffling keeps a sorted split (say, one folder per identity) from making one-class batches,
    whose triplet loss would say nothing.
    """
    return (
        _known_identities(dataset, None)
        .shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
        .batch(batch_size)
        .prefetch(AUTOTUNE)
        .apply(without_autotuning)
    )
