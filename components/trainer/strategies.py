"""Training strategies: what `fit` does differently for each `loss` and `triplet_strategy`.

A strategy is one object that knows its training batches, the images in them, the batches Keras
computes the validation loss on, the Keras model that trains on them, whether P (identities
per batch) is capped at the trainable identities, and whether a zero share of active terms
means the loss is satisfied (satisfied.py):
- `OnlineMining` (loss triplet; semi_hard, batch_hard, batch_all): class-balanced P x K
  batches, the triplets mined within each batch by the strategy's pure loss function
  (triplet_loss.py), trained by model.TripletModel; P is capped.
- `RandomTriplets` (loss triplet; random): the original notebook's explicit (anchor, positive,
  negative) triplets, drawn at random and trained by the three-branch model.SiameseModel.
- `PairLoss` (multi_similarity), `SampledPairLoss` (margin) and `ProxyLoss` (arcface): the
  same P x K batches and TripletModel, with the loss's pure function (multi_similarity_loss.py,
  margin_loss.py, arcface_loss.py) at its paper's defaults; the sampling loss draws from a
  model.RandomDraws, the proxy loss trains a model.ProxyHead of one proxy per label id.
`get` maps HParams.triplet_strategy to its strategy, `for_hparams` an HParams to the one it
trains with.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from components.settings import check_choice
from components.trainer import (
    arcface_loss,
    data,
    margin_loss,
    model,
    multi_similarity_loss,
    triplet_loss,
    validation,
)
from components.trainer.hparams import RANDOM, TRIPLET, HParams

keras = tf.keras


class TripletStrategy:
    """What one training strategy does; see the module docstring."""

    name: str
    caps_identities: bool  # P x K batches cannot hold more identities than there are
    # What the loss's active_fraction counts, in the epoch line and the stop when satisfied.
    terms = "triplets"
    # Whether no active term on any batch of an epoch means the loss (and its gradient) is 0.
    satisfiable = True

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
        identities: int = 0,
    ) -> keras.Model:
        """The Keras model that trains `training_network` (uncompiled); `identities`: the
        number of label ids (Transform's label vocabulary), which a proxy loss needs."""
        raise NotImplementedError


class ClassBalanced(TripletStrategy):
    """Class-balanced P x K batches: P identities, K images each; P is capped."""

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


@dataclasses.dataclass(frozen=True)
class OnlineMining(ClassBalanced):
    """Triplets mined online within class-balanced P x K batches by `loss`, a pure function
    (labels, embeddings, margin, squared, soft) -> (loss, active_fraction) of triplet_loss.py."""

    name: str
    loss: Callable

    def trainer(self, hparams, training_network, embedding_network, augmentation, identities=0):
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

    def trainer(self, hparams, training_network, embedding_network, augmentation, identities=0):
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


@dataclasses.dataclass(frozen=True)
class PairLoss(ClassBalanced):
    """A loss over the pairs of P x K batches, `loss(labels, embeddings) -> (loss,
    active_fraction)` at its defaults (multi_similarity)."""

    name: str
    loss: Callable
    terms = "pairs"

    def trainer(self, hparams, training_network, embedding_network, augmentation, identities=0):
        return model.TripletModel(training_network, self.loss, embedding_network, augmentation)


@dataclasses.dataclass(frozen=True)
class SampledPairLoss(ClassBalanced):
    """A loss that samples within P x K batches, `loss(labels, embeddings, uniforms)`, its
    uniform draws from a model.RandomDraws seeded with HParams.seed (margin)."""

    name: str
    loss: Callable
    terms = "pairs"

    def trainer(self, hparams, training_network, embedding_network, augmentation, identities=0):
        draws = model.RandomDraws(self.loss, hparams.seed, name=f"{self.name}_draws")
        return model.TripletModel(training_network, draws, embedding_network, augmentation)


@dataclasses.dataclass(frozen=True)
class ProxyLoss(ClassBalanced):
    """A loss against one trained proxy per identity, `loss(labels, embeddings,
    class_weights)`, the class weights a model.ProxyHead over every label id (arcface). Its
    softmax always has a gradient, so it is never satisfied."""

    name: str
    loss: Callable
    satisfiable = False
    terms = "images"  # those the angular margin still misclassifies

    def trainer(self, hparams, training_network, embedding_network, augmentation, identities=0):
        if identities < 1:
            raise ValueError(f"loss {self.name} needs the number of identities (label ids)")
        head = model.ProxyHead(
            self.loss, identities, hparams.embedding_dim, name=f"{self.name}_proxies"
        )
        return model.TripletModel(training_network, head, embedding_network, augmentation)


REGISTRY: dict[str, TripletStrategy] = {
    strategy.name: strategy
    for strategy in (
        *(OnlineMining(name, triplet_loss.get(name)) for name in triplet_loss.STRATEGIES),
        RandomTriplets(),
    )
}


# The losses other than triplet, by HParams.loss.
LOSS_REGISTRY: dict[str, TripletStrategy] = {
    strategy.name: strategy
    for strategy in (
        PairLoss("multi_similarity", multi_similarity_loss.multi_similarity),
        SampledPairLoss("margin", margin_loss.margin_loss),
        ProxyLoss("arcface", arcface_loss.arcface),
    )
}


def get(name: str) -> TripletStrategy:
    """The strategy of HParams.triplet_strategy `name`."""
    check_choice("triplet_strategy", name, tuple(REGISTRY))
    return REGISTRY[name]


def for_hparams(hparams: HParams) -> TripletStrategy:
    """The strategy `hparams` train with: its loss's, or for the triplet loss its
    triplet_strategy's."""
    if hparams.loss == TRIPLET:
        return get(hparams.triplet_strategy)
    check_choice("loss", hparams.loss, tuple(LOSS_REGISTRY))
    return LOSS_REGISTRY[hparams.loss]
