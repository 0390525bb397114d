"""The serving export: the Trainer's `serving_default` plus `verify` and `identify`, saved.

Signatures (every input a 1-D string tensor of serialized tf.Example with `image`):
  serving_default(examples) -> embedding float32 [B, D], L2-normalised (the Trainer's, unchanged)
  verify(examples_a, examples_b) -> distance float32 [B], same bool [B] (distance <= threshold),
      threshold float32 [B] (the same value for every pair)
  identify(examples) -> identities string [B, k], distances float32 [B, k] (ascending),
      known bool [B] (the nearest is within the threshold); only with a gallery.
Every output has the batch first, so TF Serving's REST row format ({"instances": [...]}, what
KServe's V1 protocol sends) works as well as the columnar one ({"inputs": {...}}).
Distances are Euclidean between the served (unit-norm) embeddings, the definition of
components.evaluator.embedding_metrics.pair_distances that calibrated the threshold.
Every signature first reads each image's header and refuses images above `max_image_pixels`
(components.serving.image_guard). `assets.extra/calibration.json` records the calibration.
"""

import json
import os

import numpy as np
import tensorflow as tf

from components import keys
from components.serving import image_guard

VERIFY, IDENTIFY = keys.VERIFY, keys.IDENTIFY
_EXAMPLES = tf.TensorSpec([None], tf.string, name=keys.EXAMPLES)
_IMAGE_SPEC = {keys.IMAGE: tf.io.FixedLenFeature([], tf.string)}


class _ServingModule(tf.Module):
    """The trained model's embedding signature wrapped with the threshold and the gallery."""

    def __init__(self, trained, threshold: float, max_image_pixels: int, gallery=None):
        super().__init__()
        self.trained = trained  # Tracks the Trainer's variables and Transform assets.
        self._embed_fn = trained.signatures[keys.SERVING_DEFAULT]
        self.threshold = tf.Variable(threshold, dtype=tf.float32, trainable=False)
        self._max_image_pixels = int(max_image_pixels)
        if gallery is not None:
            embeddings, identities = gallery
            embeddings = np.asarray(embeddings, dtype=np.float32)
            self.gallery_embeddings = tf.Variable(embeddings, trainable=False)
            self.gallery_sq_norms = tf.Variable(
                np.einsum("ij,ij->i", embeddings, embeddings), trainable=False
            )
            self.gallery_identities = tf.Variable(
                np.asarray(identities, dtype=object).astype(bytes), trainable=False
            )

    def embed(self, examples):
        images = tf.io.parse_example(examples, _IMAGE_SPEC)[keys.IMAGE]
        checked = image_guard.check_image_sizes(images, self._max_image_pixels)
        with tf.control_dependencies([checked]):
            examples = tf.identity(examples)
        return self._embed_fn(**{keys.EXAMPLES: examples})[keys.EMBEDDING]

    @tf.function(input_signature=[_EXAMPLES])
    def serve(self, examples):
        return {keys.EMBEDDING: self.embed(examples)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name=keys.EXAMPLES_A),
            tf.TensorSpec([None], tf.string, name=keys.EXAMPLES_B),
        ]
    )
    def verify(self, examples_a, examples_b):
        tf.debugging.assert_equal(
            tf.size(examples_a),
            tf.size(examples_b),
            message="verify: examples_a and examples_b must hold the same number of examples",
        )
        count = tf.size(examples_a)
        embeddings = self.embed(tf.concat([examples_a, examples_b], axis=0))
        distance = tf.norm(embeddings[:count] - embeddings[count:], axis=1)
        return {
            keys.DISTANCE: distance,
            keys.SAME: distance <= self.threshold,
            # One per pair, like every output: TF Serving's row format ("instances") splits
            # each output along its first dimension and refuses a scalar.
            keys.THRESHOLD: tf.fill(tf.shape(distance), self.threshold),
        }

    def identify_fn(self, top_k: int):
        k = min(int(top_k), int(self.gallery_embeddings.shape[0]))

        @tf.function(input_signature=[_EXAMPLES])
        def identify(examples):
            queries = self.embed(examples)
            squared = (
                tf.reduce_sum(queries * queries, axis=1, keepdims=True)
                - 2.0 * tf.matmul(queries, self.gallery_embeddings, transpose_b=True)
                + self.gallery_sq_norms[None, :]
            )
            negative, nearest = tf.math.top_k(-squared, k=k)
            distances = tf.sqrt(tf.maximum(-negative, 0.0))
            return {
                keys.IDENTITIES: tf.gather(self.gallery_identities, nearest),
                keys.DISTANCES: distances,
                keys.KNOWN: distances[:, 0] <= self.threshold,
            }

        return identify


def export_serving_model(
    trained,
    export_dir: str,
    *,
    threshold: float,
    max_image_pixels: int,
    calibration: dict,
    gallery: tuple[np.ndarray, np.ndarray] | None = None,
    top_k: int = 5,
) -> None:
    """Saves the Trainer's model with the three signatures to export_dir.

    trained: the Trainer's SavedModel directory, or that model already loaded (a served
    version's `trained`, when only the gallery changes).

    gallery: (embeddings [N, D] as served, identity names [N]); None leaves `identify` out.
    calibration: facts written to assets.extra/calibration.json (threshold, far, ...).
    """
    if isinstance(trained, str):
        trained = tf.saved_model.load(trained)
    module = _ServingModule(trained, threshold, max_image_pixels, gallery)
    signatures = {keys.SERVING_DEFAULT: module.serve, VERIFY: module.verify}
    if gallery is not None:
        module.identify = module.identify_fn(top_k)
        signatures[IDENTIFY] = module.identify
    tf.saved_model.save(module, export_dir, signatures=signatures)
    extra = os.path.join(export_dir, keys.ASSETS_EXTRA)
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, keys.CALIBRATION_FILE), "w") as f:
        json.dump(calibration, f, indent=2, sort_keys=True)


def export_with_gallery(model_dir: str, export_dir: str, gallery, calibration: dict) -> None:
    """Saves the served model at model_dir again with another gallery: the same weights,
    threshold, pixel limit and top-k (from its calibration.json), `calibration` as its asset."""
    served = tf.saved_model.load(model_dir)
    export_serving_model(
        served.trained,
        export_dir,
        threshold=float(served.threshold.numpy()),
        max_image_pixels=int(calibration["max_image_pixels"]),
        calibration=calibration,
        gallery=gallery,
        top_k=int(calibration.get("top_k", 5)),
    )


def read_calibration(model_dir: str) -> dict | None:
    """The calibration.json of a served model, or None if it has none."""
    path = os.path.join(model_dir, keys.ASSETS_EXTRA, keys.CALIBRATION_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
