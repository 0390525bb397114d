"""Embeds the raw eval examples with a SavedModel's serving signature, in batches."""

import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from components.trainer.data import without_autotuning

BATCH = 256


def read_split(examples_uri: str, split: str, limit: int | None = None):
    """Serialized raw tf.Examples of one split of an Examples artifact, streamed."""
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        raise FileNotFoundError(f"{examples_uri}: no files in split '{split}'")
    dataset = without_autotuning(tf.data.TFRecordDataset(files, compression_type="GZIP"))
    return dataset.take(limit) if limit else dataset


def embed_examples(model_dir: str, records: tf.data.Dataset, thumbnails: int = 0):
    """(embeddings [N, D], labels [N] str, first `thumbnails` decoded images as arrays)."""
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    embeddings, labels, images = [], [], []
    for batch in records.batch(BATCH):
        embeddings.append(serve(examples=batch)["embedding"].numpy())
        for record in batch.numpy():
            features = tf.train.Example.FromString(record).features.feature
            labels.append(features["label"].bytes_list.value[0].decode())
            if len(images) < thumbnails:
                image = Image.open(io.BytesIO(features["image"].bytes_list.value[0]))
                images.append(np.asarray(image.convert("L")))
    return np.concatenate(embeddings), np.array(labels), images
