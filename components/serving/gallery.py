"""The gallery that `identify` searches: served embeddings of a dataset, per image or centroid.

Reads the train split of the pipeline's Examples, or any dataset path in a supported format
through the ExampleGen readers (IDX, folder per identity, raw TFRecords).
"""

import logging
import os

import numpy as np
import tensorflow as tf

from components import example_io
from components.example_gen import readers, sources

CENTROIDS = "centroids"


def dataset_records(path: str):
    """Serialized raw tf.Examples of every image of a dataset directory, as ExampleGen reads it."""
    data_format = sources.detect_format(path)
    if data_format == sources.DIGITS:
        raise sources.DatasetError("gallery: give a dataset directory, not 'digits'")
    for split in sources.input_config(data_format).splits:
        paths = sorted(tf.io.gfile.glob(os.path.join(path, split.pattern)))
        if data_format == sources.IDX:
            if not paths:
                continue
            images_path, labels_path = readers.idx_pair(paths, split.pattern)
            total = readers.check_idx_pair(images_path, labels_path)
            for chunk in readers.idx_chunk_to_examples((0, total), images_path, labels_path):
                yield chunk.SerializeToString()
        elif data_format == sources.FOLDER:
            for image_path in readers.identity_images(paths):
                yield readers.image_file_to_example(image_path).SerializeToString()
        else:
            for record_path in paths:
                compression = "GZIP" if record_path.endswith(".gz") else ""
                for record in tf.data.TFRecordDataset(record_path, compression):
                    example = readers.check_raw_record((record_path, record.numpy()))
                    yield example.SerializeToString()


def records_dataset(path: str) -> tf.data.Dataset:
    return tf.data.Dataset.from_generator(
        lambda: dataset_records(path), output_signature=tf.TensorSpec([], tf.string)
    )


def centroids(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One unit-norm mean embedding per identity (same scale as the served embeddings)."""
    identities, codes = np.unique(labels, return_inverse=True)
    sums = np.zeros((identities.size, embeddings.shape[1]))
    np.add.at(sums, codes.reshape(-1), embeddings)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32), identities


def cap(embeddings, labels, max_entries: int, seed: int = 0):
    """At most max_entries rows (a seeded random subset, logged); returns (emb, labels, note)."""
    if len(labels) <= max_entries:
        return embeddings, labels, None
    keep = np.sort(np.random.default_rng(seed).choice(len(labels), max_entries, replace=False))
    note = (
        f"gallery cut from {len(labels)} to {max_entries} entries (a random subset); "
        "raise --max-gallery or use --gallery-mode centroids to keep more"
    )
    logging.warning(note)
    return embeddings[keep], labels[keep], note


def build_gallery(model_dir: str, records: tf.data.Dataset, mode: str, max_entries: int):
    """(embeddings, identities, note) of `records` embedded with the model at model_dir."""
    embeddings, labels, _ = example_io.embed_examples(model_dir, records)
    if mode == CENTROIDS:
        embeddings, labels = centroids(embeddings, labels)
    return cap(embeddings, labels, max_entries)
