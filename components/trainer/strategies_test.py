"""Every triplet strategy is one object: its batches, its images, its Keras trainer."""

import numpy as np
import pytest
import tensorflow as tf

from components.settings import SettingError
from components.trainer import model, strategies, triplet_loss
from components.trainer.fit_test import TINY, tiny_dataset
from components.trainer.hparams import STRATEGIES


def test_every_strategy_of_the_hyperparameters_has_one():
    assert tuple(strategies.REGISTRY) == STRATEGIES
    for name in triplet_loss.STRATEGIES:
        mining = strategies.get(name)
        assert mining.loss is triplet_loss.get(name) and mining.caps_identities
    assert not strategies.get("random").caps_identities
    with pytest.raises(SettingError, match="triplet_strategy"):
        strategies.get("hardest")


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
