"""The validation slice: train examples held back from training to pick the best epoch on.

Not the eval split: the Evaluator judges that one, and choosing the epoch on it would flatter the
blessing. The slice is cut from Transform's train split inside tf.data, deterministically (the
same examples every epoch and every run on the same data), and the Trainer never trains on it:
  * by identity (open-set data, `--split-by identity`): whole identities, taken in the order of
    a SHA-256 hash of their names until they hold `fraction` of the train images (at least two
    identities; no more than `max_images` images once two are in). The selection then rewards
    embeddings of people the model has not trained on, as the Evaluator's open-set split does.
    With few identities (six classes, say) the two held back can hold many images: the model
    trains on none of them, and the epoch is scored on a `max_images` sample of them. With
    fewer than `min_identities` trainable identities (`--validation-min-identities`, never under
    MIN_IDENTITIES_BY_IDENTITY) the slice is held back by image instead.
  * by image (closed-set data): each example whose transformed image has a FarmHash
    fingerprint in the first buckets, `fraction` of them, lowered so that about `max_images`
    are held (duplicate images land on the same side).

`hold_out_validation` cuts the slice out of the train split for `fit`, as the Trainer and the
benchmarks both do; `validation_batches` gives it in the fixed batches embedded each epoch.
"""

import dataclasses
import hashlib

import numpy as np
import tensorflow as tf
from absl import logging

from components.example_gen.split_modes import SPLIT_BY_IDENTITY as BY_IDENTITY
from components.example_gen.split_modes import SPLIT_BY_IMAGE as BY_IMAGE
from components.trainer import data
from components.trainer.hparams import (
    MIN_HELD_IDENTITIES,
    MIN_IDENTITIES_BY_IDENTITY,
    VALIDATION_BY,
    HParams,
)

MIN_IMAGES = 10  # A smaller slice would select on noise: no validation then.
SLICE_TOO_SMALL = f"the slice would hold under {MIN_IMAGES} images"
BUCKETS = 10_000
EVAL_BATCH_SIZE = 256
# The validation slice is kept in memory after its first pass when it fits in this: otherwise
# every epoch would re-read the whole train split (twice) to find it.
VALIDATION_CACHE_BYTES = 512 << 20


def name_hash(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def fingerprint_bucket(image: tf.Tensor) -> tf.Tensor:
    """The image's FarmHash bucket in [0, BUCKETS): the same image, the same bucket."""
    return tf.strings.to_hash_bucket_fast(tf.io.serialize_tensor(image), BUCKETS)


def sample_buckets(images: int, max_images: int) -> int:
    """Buckets whose images make a sample of about `max_images` of `images`."""
    return min(BUCKETS, int(round(BUCKETS * max_images / max(images, 1))))


@dataclasses.dataclass(frozen=True)
class ValidationSlice:
    """Which train examples are held back; made by `plan`."""

    by: str
    images: int  # held-back images (expected, for by image)
    train_images: int  # trainable images left to train on
    identities: int  # identities in the slice (by identity), or the train identities it samples
    held_identities: tuple[bool, ...] = ()  # by identity: per label id
    # By image: fingerprints in [0, image_buckets) of BUCKETS are held back. By identity: the
    # held images with such fingerprints are scored (all of them at BUCKETS).
    image_buckets: int = 0
    scored_images: int = 0  # images the epochs are scored on (expected, when sampled)

    def is_held(self, image: tf.Tensor, label: tf.Tensor) -> tf.Tensor:
        if self.by == BY_IDENTITY:
            held = tf.constant(self.held_identities, tf.bool)
            return tf.logical_and(label >= 0, tf.gather(held, tf.maximum(label, 0)))
        return fingerprint_bucket(image) < self.image_buckets

    def is_scored(self, image: tf.Tensor, label: tf.Tensor) -> tf.Tensor:
        scored = tf.logical_and(label >= 0, self.is_held(image, label))
        if self.by == BY_IDENTITY and self.image_buckets < BUCKETS:
            return tf.logical_and(scored, fingerprint_bucket(image) < self.image_buckets)
        return scored

    def train_part(self, examples: tf.data.Dataset) -> tf.data.Dataset:
        return examples.filter(lambda image, label: tf.logical_not(self.is_held(image, label)))

    def validation_part(self, examples: tf.data.Dataset) -> tf.data.Dataset:
        """The held-back examples the epochs are scored on, in the order given."""
        return examples.filter(self.is_scored)

    def trainable(self, trainable: np.ndarray) -> np.ndarray:
        """The trainable mask without the held-back identities."""
        if self.by == BY_IDENTITY:
            return trainable & ~np.array(self.held_identities, dtype=bool)
        return trainable

    def describe(self) -> dict:
        return {
            "by": self.by,
            "images": self.images,
            "scored_images": self.scored_images,
            "identities": self.identities,
            "train_images": self.train_images,
        }


def _by_identity(names, counts, trainable, fraction, max_images) -> ValidationSlice:
    total = int(counts[trainable].sum())
    order = sorted(np.flatnonzero(trainable), key=lambda i: name_hash(names[i]))
    held = np.zeros(len(names), dtype=bool)
    images = 0
    for i in order:
        enough = held.sum() >= MIN_HELD_IDENTITIES
        if enough and (images >= fraction * total or images + counts[i] > max_images):
            break
        held[i] = True
        images += int(counts[i])
    buckets = sample_buckets(images, max_images)
    return ValidationSlice(
        by=BY_IDENTITY,
        images=images,
        train_images=total - images,
        identities=int(held.sum()),
        held_identities=tuple(bool(h) for h in held),
        image_buckets=buckets,
        scored_images=int(round(images * buckets / BUCKETS)),
    )


def _by_image(counts, trainable, fraction, max_images) -> ValidationSlice:
    total = int(counts[trainable].sum())
    rate = min(fraction, max_images / max(total, 1))
    buckets = int(round(rate * BUCKETS))
    images = int(round(total * buckets / BUCKETS))
    return ValidationSlice(
        by=BY_IMAGE,
        images=images,
        train_images=total - images,
        identities=int(trainable.sum()),
        image_buckets=buckets,
        scored_images=images,
    )


def why_no_slice(fraction: float, min_train_images: int, train_images: int) -> str | None:
    """Why these settings give a train split of `train_images` no slice, in words for the log,
    training.json and the run summary; None when they give it one (`plan` may still find it
    too small: SLICE_TOO_SMALL)."""
    if fraction <= 0:
        return "validation_fraction is 0"
    if train_images < min_train_images:
        return (
            f"{train_images} train images, under validation_min_train_images "
            f"({min_train_images}): trained on all of them"
        )
    return None


def plan(
    by: str,
    fraction: float,
    max_images: int,
    names: list[str],
    counts: np.ndarray,
    trainable: np.ndarray,
    min_train_images: int = 0,
    min_identities: int = MIN_IDENTITIES_BY_IDENTITY,
) -> ValidationSlice | None:
    """The slice for label ids named `names`, with `counts` train images each; None when off.

    `trainable` marks the identities with 2+ train images (data.trainable_mask). A train split
    of fewer than `min_train_images` trainable images gets no slice: on small data every image
    is worth more in training than in picking an epoch (benchmarks/RESULTS.md), and a slice of
    a small split would rank epochs on noise. By identity needs `min_identities` trainable
    identities, else the slice is held back by image.
    """
    if by not in VALIDATION_BY:
        raise ValueError(f"validation_by must be one of {VALIDATION_BY}, got {by!r}")
    counts = np.asarray(counts, dtype=np.int64)
    trainable = np.asarray(trainable, dtype=bool)
    reason = why_no_slice(fraction, min_train_images, int(counts[trainable].sum()))
    if reason:
        logging.info("No validation slice (%s); the last epoch is kept", reason)
        return None
    needed = max(min_identities, MIN_IDENTITIES_BY_IDENTITY)
    if by == BY_IDENTITY and trainable.sum() < needed:
        logging.info(
            "Validation slice by image, not identity: only %d trainable identities (%d needed)",
            trainable.sum(),
            needed,
        )
        by = BY_IMAGE
    if by == BY_IDENTITY:
        chosen = _by_identity(names, counts, trainable, fraction, max_images)
    else:
        chosen = _by_image(counts, trainable, fraction, max_images)
    if chosen.scored_images < MIN_IMAGES:
        logging.warning(
            "No validation slice: %d images would be too few to pick an epoch on; "
            "the last epoch is kept",
            chosen.scored_images,
        )
        return None
    logging.info("Validation slice (held back from training): %s", chosen.describe())
    return chosen


@dataclasses.dataclass
class TrainingData:
    """The train split with the validation slice held back: what `fit` takes."""

    train: tf.data.Dataset  # (image, label id) pairs to train on
    validation: tf.data.Dataset | None  # the held-back slice, in a fixed order
    trainable: np.ndarray  # label ids with 2+ train images, held-back identities excluded
    train_images: int  # trainable images left to train on
    held: ValidationSlice | None


def hold_out_validation(
    hparams: HParams,
    train_examples: tf.data.Dataset,
    examples_in_order: tf.data.Dataset,
    names: list[str],
    per_label_id: np.ndarray,
    trainable: np.ndarray,
) -> TrainingData:
    """Cuts the validation slice (`plan`) out of the train split, as the Trainer and the
    benchmark both do. `train_examples` and `examples_in_order` are the same examples, shuffled
    and in a fixed order; `per_label_id` counts the train images of each label id (`names`)."""
    held = plan(
        hparams.validation_by,
        hparams.validation_fraction,
        hparams.validation_max_images,
        names,
        per_label_id,
        trainable,
        hparams.validation_min_train_images,
        hparams.validation_min_identities,
    )
    if held is None:
        return TrainingData(
            train_examples, None, trainable, int(per_label_id[trainable].sum()), None
        )
    validation_examples = held.validation_part(examples_in_order)
    if held.scored_images * data.image_bytes(hparams.image_shape) <= VALIDATION_CACHE_BYTES:
        validation_examples = validation_examples.cache()
    return TrainingData(
        train=held.train_part(train_examples),
        validation=validation_examples,
        trainable=held.trainable(trainable),
        train_images=held.train_images,
        held=held,
    )


def shuffle_buffer(hparams: HParams) -> int:
    """Images in the buffer that shuffles the slice into its fixed order."""
    return min(data.shuffle_buffer_size(hparams.image_shape), 2048)


def validation_batches(hparams: HParams, validation_examples: tf.data.Dataset) -> tf.data.Dataset:
    """The validation slice in fixed batches, the same every epoch."""
    return data.evaluation_batches(
        validation_examples, EVAL_BATCH_SIZE, hparams.seed, shuffle_buffer(hparams)
    )
