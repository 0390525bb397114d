"""Reading and embedding examples, shared by every stage that touches them after ExampleGen.

The Trainer, the EmbeddingReport, the Evaluator's baseline and ServingModel all read
ExampleGen's gzipped TFRecords, parse raw tf.Examples (keys.IMAGE, keys.LABEL) and embed them
with a SavedModel's serving signature; each does it through here. No stage-specific code:
this module imports nothing of ours but `keys`.
"""

import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from components import keys

BATCH = 256  # Examples per call of the serving signature.


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with tf.data's autotuning off (AUTOTUNE then means one call per core).

    Autotuning runs an optimisation thread that sleeps for up to a minute between rounds, and
    in TensorFlow 2.16 deleting an iterator waits for that sleep to end: at the end of
    training the Trainer stalled for up to 35 s (gdb: RootDataset::Iterator::~Iterator waiting
    on Model::OptimizeLoop), and every finished pass over a dataset could stall too. This
    input is light, and trains as fast with fixed parallelism (3,600 images/s on 2 cores).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def read_split(examples_uri: str, split: str, limit: int | None = None) -> tf.data.Dataset:
    """Serialized raw tf.Examples of one split of an Examples artifact, streamed."""
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        raise FileNotFoundError(f"{examples_uri}: no files in split '{split}'")
    dataset = without_autotuning(tf.data.TFRecordDataset(files, compression_type="GZIP"))
    return dataset.take(limit) if limit else dataset


def label_of(example: tf.train.Example) -> str:
    """The identity name of a raw tf.Example."""
    return example.features.feature[keys.LABEL].bytes_list.value[0].decode()


def image_of(example: tf.train.Example) -> bytes:
    """The encoded image bytes of a raw tf.Example."""
    return example.features.feature[keys.IMAGE].bytes_list.value[0]


def embed_examples(model_dir: str, records: tf.data.Dataset, thumbnails: int = 0):
    """(embeddings [N, D], labels [N] str, first `thumbnails` decoded images as arrays) of
    serialized raw tf.Examples, embedded with the SavedModel at `model_dir`."""
    serve = tf.saved_model.load(model_dir).signatures[keys.SERVING_DEFAULT]
    embeddings, labels, images = [], [], []
    for batch in records.batch(BATCH):
        embeddings.append(serve(**{keys.EXAMPLES: batch})[keys.EMBEDDING].numpy())
        for record in batch.numpy():
            example = tf.train.Example.FromString(record)
            labels.append(label_of(example))
            if len(images) < thumbnails:
                image = Image.open(io.BytesIO(image_of(example)))
                images.append(np.asarray(image.convert("L")))
    return np.concatenate(embeddings), np.array(labels), images
