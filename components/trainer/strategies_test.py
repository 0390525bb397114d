"""Every triplet strategy and every other loss is one object: its batches, its images, its
Keras trainer."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from components.settings import SettingError
from components.trainer import (
    arcface_loss,
    margin_loss,
    model,
    multi_similarity_loss,
    strategies,
    triplet_loss,
)
from components.trainer.fit_test import TINY, tiny_dataset
from components.trainer.hparams import LOSSES, STRATEGIES, TRIPLET


def test_every_strategy_of_the_hyperparameters_has_one():
    assert tuple(strategies.REGISTRY) == STRATEGIES
    for name in triplet_loss.STRATEGIES:
        mining = strategies.get(name)
        assert mining.loss is triplet_loss.get(name) and mining.caps_identities
    assert not strategies.get("random").caps_identities
    with pytest.raises(SettingError, match="triplet_strategy"):
        strategies.get("hardest")


def test_every_loss_of_the_hyperparameters_has_one():
    assert (TRIPLET, *strategies.LOSS_REGISTRY) == LOSSES
    assert strategies.for_hparams(TINY) is strategies.get(TINY.triplet_strategy)
    expected = {
        "multi_similarity": (multi_similarity_loss.multi_similarity, True),
        "margin": (margin_loss.margin_loss, True),
        "arcface": (arcface_loss.arcface, False),  # A softmax is never satisfied.
    }
    for name, (loss, satisfiable) in expected.items():
        strategy = strategies.for_hparams(dataclasses.replace(TINY, loss=name))
        assert strategy.name == name and strategy.loss is loss and strategy.caps_identities
        assert strategy.satisfiable == satisfiable
    assert all(strategies.get(name).satisfiable for name in STRATEGIES)


@pytest.mark.parametrize(
    "name,trainer", [("semi_hard", model.TripletModel), ("random", model.SiameseModel)]
)
def test_a_strategy_gives_its_batches_their_images_and_its_trainer(name, trainer):
    examples, _ = tiny_dataset()
    strategy = strategies.get(name)
    batches = strategy.training_batches(TINY, examples, np.ones(4, bool))
    images = next(iter(strategy.training_images(batches)))
    assert images.shape[1:] == (8, 8, 1)
    # The validation loss batches have the training batches' structure (Keras's test_step).
    held = strategy.validation_loss_batches(TINY, examples)
    tf.nest.assert_same_structure(held.element_spec, batches.element_spec)
    assert next(iter(strategy.training_images(held))).shape[1:] == (8, 8, 1)
    networks = model.build_networks_for(TINY)
    assert isinstance(strategy.trainer(TINY, *networks, None), trainer)


@pytest.mark.parametrize(
    "loss, head",
    [("multi_similarity", None), ("margin", model.RandomDraws), ("arcface", model.ProxyHead)],
)
def test_a_loss_trains_the_network_and_its_head_on_p_x_k_batches(loss, head):
    hparams = dataclasses.replace(TINY, loss=loss)
    examples, _ = tiny_dataset()
    strategy = strategies.for_hparams(hparams)
    batches = strategy.training_batches(hparams, examples, np.ones(4, bool))
    images, labels = next(iter(batches))
    assert images.shape[0] == labels.shape[0] == hparams.batch_size
    network = model.build_networks_for(hparams)[0]
    trainer = strategy.trainer(hparams, network, network, None, identities=6)
    assert isinstance(trainer, model.TripletModel)
    weights = list(network.trainable_variables)
    if head is None:
        assert not isinstance(trainer.loss_fn, model.LossHead)
        assert trainer.trained_variables() == weights
    else:
        assert isinstance(trainer.loss_fn, head)
        assert trainer.trained_variables() == weights + trainer.loss_fn.trainable_variables
    loss_value, active = trainer.compute_triplet_loss((images, labels), training=True)
    assert np.isfinite(loss_value.numpy()) and 0.0 <= active.numpy() <= 1.0
    if loss == "arcface":
        assert trainer.loss_fn.proxies.shape == (6, hparams.embedding_dim)
        with pytest.raises(ValueError, match="number of identities"):
            strategy.trainer(hparams, network, network, None)
