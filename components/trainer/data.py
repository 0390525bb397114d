"""tf.data input: class-balanced P x K batches of transformed images, streamed from TFRecords."""

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging

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
        labels = tf.reshape(features[preprocessing.LABEL_KEY], [-1])
        return features[preprocessing.IMAGE_KEY], labels

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


def trainable_identities(tf_transform_output: tft.TFTransformOutput) -> np.ndarray:
    """A boolean per label id: True for identities with at least two train images."""
    counts = identity_counts(tf_transform_output)
    vocabulary = tf_transform_output.vocabulary_by_name(preprocessing.LABEL_VOCABULARY)
    keep = np.array([counts.get(v.decode(), 0) >= 2 for v in vocabulary], dtype=bool)
    left_out = int((~keep).sum())
    if left_out:
        logging.warning("Leaving out %d identities with fewer than 2 train images", left_out)
    if keep.sum() < 2:
        raise ValueError("training needs at least 2 identities with 2 or more images each")
    return keep


def class_balanced_batches(
    dataset: tf.data.Dataset,
    trainable: np.ndarray,
    identities_per_batch: int,
    images_per_identity: int,
    seed: int,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """Endless batches of P identities x K images each, grouped on the fly from a stream.

    Memory holds the shuffle buffer plus at most K - 1 waiting images per identity, so this
    works for 10 classes and for 10,000 identities alike.
    """
    keep = tf.constant(trainable)
    p, k = identities_per_batch, images_per_identity
    return (
        dataset.filter(
            lambda image, label: tf.logical_and(label >= 0, tf.gather(keep, tf.maximum(label, 0)))
        )
        .shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .group_by_window(
            key_func=lambda image, label: tf.cast(label, tf.int64),
            reduce_func=lambda key, group: group.batch(k, drop_remainder=True),
            window_size=k,
        )
        .shuffle(4 * p, seed=seed)
        .batch(p, drop_remainder=True)
        .map(
            lambda images, labels: (
                tf.reshape(images, [p * k, *images.shape[2:]]),
                tf.reshape(labels, [p * k]),
            ),
            num_parallel_calls=AUTOTUNE,
        )
        .prefetch(AUTOTUNE)
    )


def evaluation_batches(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Eval images with a known identity, in fixed order."""
    return dataset.filter(lambda image, label: label >= 0).batch(batch_size).prefetch(AUTOTUNE)
