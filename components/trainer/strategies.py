"""Triplet strategies: what `fit` does differently for each `triplet_strategy`.

A strategy is one object that knows its training batches, the images in them, the batches Keras
computes the validation loss on, the Keras model that trains on them, and whether P (identities
per batch) is capped at the trainable identities:
- `OnlineMining` (semi_hard, batch_hard, batch_all): class-balanced P x K batches, the triplets
  mined within each batch by the strategy's pure loss function (triplet_loss.py), trained by
  model.TripletModel; P is capped.
- `RandomTriplets` (random): the original notebook's explicit (anchor, positive, negative)
  triplets, drawn at random and trained by the three-branch model.SiameseModel.
`get` maps HParams.triplet_strategy to its strategy.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from components.settings import check_choice
from components.trainer import data, model, triplet_loss, validation
from components.trainer.hparams import RANDOM, HParams

keras = tf.keras


class TripletStrategy:
    """What one triplet strategy does; see the module docstring."""

    name: str
    caps_identities: bool  # P x K batches cannot hold more identities than there are

    def training_batches(
        self, hparams: HParams, train_examples: tf.data.Dataset, trainable: np.ndarray
    ) -> tf.data.Dataset:
        """Endless training batches of the identities marked `trainable`."""
        raise NotImplementedError

    def training_images(self, train_batches: tf.data.Dataset) -> tf.data.Dataset:
        """The images of `training_batches` (for satisfied.recalibrate_batch_norm)."""
        raise NotImplementedError

    def validation_loss_batches(
        self, hparams: HParams, validation_examples: tf.data.Dataset
    ) -> tf.data.Dataset:
        """What Keras computes the validation loss on, from the validation slice."""
        raise NotImplementedError

    def trainer(
        self,
        hparams: HParams,
        training_network: keras.Model,
        embedding_network: keras.Model,
        augmentation: keras.Sequential | None,
    ) -> keras.Model:
        """The Keras model that trains `training_network` (uncompiled)."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class OnlineMining(TripletStrategy):
    """Triplets mined online within class-balanced P x K batches by `loss`, a pure function
    (labels, embeddings, margin, squared, soft) -> (loss, active_fraction) of triplet_loss.py."""

    name: str
    loss: Callable
    caps_identities = True

    def training_batches(self, hparams, train_examples, trainable):
        """Endless batches of P different identities x K images each."""
        return data.class_balanced_batches(
            train_examples,
            trainable,
            hparams.identities_per_batch,
            hparams.images_per_identity,
            hparams.seed,
            data.shuffle_buffer_size(hparams.image_shape),
        )

    def training_images(self, train_batches):
        return train_batches.map(lambda images, labels: images)

    def validation_loss_batches(self, hparams, validation_examples):
        """The slice's fixed batches, as model selection embeds them."""
        return validation.validation_batches(hparams, validation_examples)

    def trainer(self, hparams, training_network, embedding_network, augmentation):
        return model.TripletModel(
            training_network, self.loss_fn(hparams), embedding_network, augmentation
        )

    def loss_fn(self, hparams: HParams):
        """`loss` with the margin, distance and soft margin of `hparams`."""
        mining = self.loss

        def loss_fn(labels, embeddings):
            return mining(
                labels,
                embeddings,
                margin=hparams.margin,
                squared=hparams.squared_distance,
                soft=hparams.soft_margin,
            )

        return loss_fn


@dataclasses.dataclass(frozen=True)
class RandomTriplets(TripletStrategy):
    """The notebook's method: batches of random triplets {"anchor", "positive", "negative"},
    whose loss is triplet_loss.random_triplets."""

    name: str = RANDOM
    caps_identities = False

    def training_batches(self, hparams, train_examples, trainable):
        """Endless batches of triplets, drawn afresh each pass."""
        return self._triplets(
            hparams, train_examples, trainable, data.shuffle_buffer_size(hparams.image_shape)
        )

    def training_images(self, train_batches):
        """The anchors."""
        return train_batches.map(lambda triplets: triplets["anchor"])

    def validation_loss_batches(self, hparams, validation_examples):
        """Random triplets drawn from the slice, in one deterministic pass."""
        return self._triplets(
            hparams, validation_examples, None, validation.shuffle_buffer(hparams), repeat=False
        )

    def trainer(self, hparams, training_network, embedding_network, augmentation):
        return model.SiameseModel(
            training_network,
            hparams.margin,
            hparams.soft_margin,
            embedding_network,
            augmentation,
        )

    @staticmethod
    def _triplets(hparams, examples, trainable, shuffle_buffer, repeat=True):
        return data.random_triplet_batches(
            examples, trainable, hparams.triplets_per_batch, hparams.seed, shuffle_buffer, repeat
        )


REGISTRY: dict[str, TripletStrategy] = {
    strategy.name: strategy
    for strategy in (
        *(OnlineMining(name, triplet_loss.get(name)) for name in triplet_loss.STRATEGIES),
        RandomTriplets(),
    )
}


def get(name: str) -> TripletStrategy:
    """The strategy of HParams.triplet_strategy `name`."""
    check_choice("triplet_strategy", name, tuple(REGISTRY))
    return REGISTRY[name]
