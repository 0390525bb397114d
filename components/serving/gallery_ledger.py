"""The gallery ledger of a serving dir, and the galleries its versions hold.

`<serving_dir>/gallery/` (not a number, so TF Serving and the served baseline skip it):
  enrolled/<key>.tfrecord  each enrolled person's images as raw tf.Examples, embedded again by
                           every new model (`key` is the SHA-256 of the name);
  forgotten.json           the key of each forgotten person, never the name.
`with_ledger` applies it to the records a new model's gallery is built from (ServingModel);
the Pusher (`without_forgotten`) leaves out anyone forgotten since a candidate's gallery was built.
components.serving.gallery_changes writes it (enrol, forget).
"""

import datetime
import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from components import example_io

LEDGER = "gallery"
ENROLLED = "enrolled"
FORGOTTEN = "forgotten.json"
_IDENTITIES_KEY = "gallery_identities/.ATTRIBUTES/VARIABLE_VALUE"
_EMBEDDINGS_KEY = "gallery_embeddings/.ATTRIBUTES/VARIABLE_VALUE"


def now() -> str:
    """The time of a change, as calibration.json records it (UTC, ISO 8601)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def identity_key(name: str) -> str:
    """The ledger's name for a person: SHA-256 of the name (a forgotten name is not kept)."""
    return hashlib.sha256(name.encode()).hexdigest()


def version_gallery(version_dir: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(embeddings [N, D], identity names [N]) of a version's gallery, read from its variables
    without loading the model; None when it has no gallery (no `identify`)."""
    reader = tf.train.load_checkpoint(os.path.join(version_dir, "variables", "variables"))
    if not reader.has_tensor(_IDENTITIES_KEY):
        return None
    names = np.array([n.decode() for n in reader.get_tensor(_IDENTITIES_KEY)])
    return reader.get_tensor(_EMBEDDINGS_KEY), names


def forgotten(serving_dir: str) -> set[str]:
    """Keys of the people forgotten in this serving dir."""
    path = os.path.join(serving_dir, LEDGER, FORGOTTEN)
    if not tf.io.gfile.exists(path):
        return set()
    with tf.io.gfile.GFile(path) as f:
        return set(json.load(f)["forgotten"])


def write_atomically(path: str, data: bytes) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    partial = f"{path}.partial"
    with tf.io.gfile.GFile(partial, "wb") as f:
        f.write(data)
    tf.io.gfile.rename(partial, path, overwrite=True)


def write_forgotten(serving_dir: str, keys: set[str]) -> None:
    data = json.dumps({"forgotten": sorted(keys)}, indent=1).encode()
    write_atomically(os.path.join(serving_dir, LEDGER, FORGOTTEN), data)


def enrolled_path(serving_dir: str, name: str) -> str:
    return os.path.join(serving_dir, LEDGER, ENROLLED, f"{identity_key(name)}.tfrecord")


def enrolled_records(serving_dir: str) -> list[bytes]:
    """Serialized raw tf.Examples of everyone enrolled in this serving dir."""
    paths = sorted(tf.io.gfile.glob(os.path.join(serving_dir, LEDGER, ENROLLED, "*.tfrecord")))
    return [r.numpy() for path in paths for r in tf.data.TFRecordDataset(path)]


def write_enrolled(serving_dir: str, name: str, records: list[bytes]) -> None:
    path = enrolled_path(serving_dir, name)
    tf.io.gfile.makedirs(os.path.dirname(path))
    partial = f"{path}.partial"
    with tf.io.TFRecordWriter(partial) as writer:
        for record in records:
            writer.write(record)
    tf.io.gfile.rename(partial, path, overwrite=True)


def with_ledger(records: tf.data.Dataset, serving_dir: str) -> tf.data.Dataset:
    """A new model's gallery records: `records` without the forgotten, plus the enrolled."""
    keys = forgotten(serving_dir)
    enrolled = enrolled_records(serving_dir)
    if not keys and not enrolled:
        return records

    def kept():
        for record in records.as_numpy_iterator():
            name = example_io.label_of(tf.train.Example.FromString(record))
            if identity_key(name) not in keys:
                yield record
        yield from enrolled

    return tf.data.Dataset.from_generator(kept, output_signature=tf.TensorSpec([], tf.string))
