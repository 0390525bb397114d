"""HParams refuses every out-of-range value, naming the field, the value and the range."""

import math

import pytest

from components.settings import SettingError
from components.trainer.hparams import HParams


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("epochs", -1, "from 1 to"),
        ("epochs", 0, "from 1 to"),
        ("min_training_steps", -1, ">= 0"),
        ("margin", -2.0, "> 0"),
        ("margin", 0.0, "> 0"),
        ("margin", math.inf, "finite"),
        ("embedding_dim", 0, "from 2 to"),
        ("image_size", 0, "from 8 to"),
        ("image_size", 4096, "from 8 to"),
        ("width", 0, "from 1 to"),
        ("channels", 2, "1, 3"),
        ("learning_rate", math.nan, "finite number > 0"),
        ("learning_rate", 0.0, "> 0"),
        ("learning_rate", 5.0, "<= 1"),
        ("weight_decay", -0.1, ">= 0"),
        ("weight_decay", 1.0, "< 1"),
        ("steps_per_epoch", -3, ">= 0"),
        ("warmup_epochs", -0.5, ">= 0"),
        ("warmup_epochs", math.nan, "finite"),
        ("augment_shift", 0.9, "<= 0.5"),
        ("early_stopping_patience", -1, ">= 0"),
        ("identities_per_batch", 1, ">= 2"),
        ("images_per_identity", 1, ">= 2"),
        ("triplets_per_batch", 0, ">= 1"),
        ("seed", -1, "from 0 to"),
        ("epochs", 2.5, "whole number"),
        ("model", "vgg", "cnn"),
        ("loss", "contrastive", "triplet, multi_similarity"),
    ],
)
def test_out_of_range_values_are_refused_with_their_range(field, value, allowed):
    with pytest.raises(SettingError) as error:
        HParams(**{field: value})
    assert error.value.name == field
    assert allowed in error.value.allowed
    assert str(value) in str(error.value) or repr(value) in str(error.value)


def test_a_projection_head_needs_a_conv_encoder():
    with pytest.raises(SettingError, match="conv encoder") as error:
        HParams(model="mlp", projection_head=True)
    assert error.value.name == "projection_head"
    assert HParams(model="resnet", projection_head=True).projection_head


def test_batch_all_refuses_the_soft_margin_and_random_allows_single_pairs():
    with pytest.raises(SettingError, match="hard margin") as error:
        HParams(triplet_strategy="batch_all", soft_margin=True)
    assert error.value.name == "soft_margin"
    HParams(triplet_strategy="random", identities_per_batch=1, images_per_identity=1)


@pytest.mark.parametrize(
    "field, value",
    [
        ("triplet_strategy", "batch_hard"),
        ("triplet_strategy", "random"),
        ("margin", 0.2),
        ("squared_distance", True),
        ("soft_margin", True),
    ],
)
@pytest.mark.parametrize("loss", ["multi_similarity", "margin", "arcface"])
def test_another_loss_refuses_the_triplet_loss_settings(loss, field, value):
    with pytest.raises(SettingError, match=f"--loss {loss} does not use it") as error:
        HParams(loss=loss, **{field: value})
    assert error.value.name == field
    hparams = HParams(loss=loss)  # At their defaults they are fine, and batches are P x K.
    assert not hparams.explicit_triplets
    assert hparams.batch_size == hparams.identities_per_batch * hparams.images_per_identity
    HParams(**{field: value})  # The triplet loss (the default) takes them.


def test_defaults_and_edges_are_accepted():
    HParams()
    HParams(image_size=8, embedding_dim=2, epochs=1, learning_rate=1.0, margin=4.0)
    assert HParams.from_config(HParams().to_config()) == HParams()
    assert HParams().loss == "triplet"


def test_epoch_steps_budget_training_by_steps_on_small_data():
    budget = HParams(epochs=12, min_training_steps=600, identities_per_batch=10)
    per_batch = budget.batch_size
    assert budget.epoch_steps(1_433) == 50  # digits: a pass is 5 steps; 12 x 50 = 600
    assert budget.epoch_steps(60_000) == 60_000 // per_batch  # a pass already exceeds 600 / 12
    assert budget.epoch_steps(0) == 50
    assert HParams(min_training_steps=0).epoch_steps(1_433) == 1_433 // per_batch
    assert HParams(epochs=7, min_training_steps=100).epoch_steps(10) == 15  # rounded up
    assert HParams(steps_per_epoch=3).epoch_steps(60_000) == 3  # set: taken as it is
