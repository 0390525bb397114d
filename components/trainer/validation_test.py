"""The validation slice: deterministic, held out of training, by identity or by image."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import validation
from components.trainer.fit_test import TINY, tiny_dataset


def examples(counts):
    """(image, label id) pairs: every image different, `counts[i]` images of label id i."""
    labels = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    images = np.arange(len(labels), dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 2, 1))
    return tf.data.Dataset.from_tensor_slices((images.astype(np.float32), labels))


def as_pairs(dataset):
    return sorted((float(image[0, 0, 0]), int(label)) for image, label in dataset)


def test_by_identity_holds_whole_identities_chosen_by_name():
    names = [f"person-{i}" for i in range(40)]
    counts = np.full(40, 10)
    trainable = np.ones(40, bool)
    held = validation.plan("identity", 0.1, 2000, names, counts, trainable)
    assert held.by == "identity" and held.identities == 4 and held.images == 40
    assert held.train_images == 360
    # The same names in another label-id order hold back the same people.
    order = np.random.default_rng(0).permutation(40)
    again = validation.plan("identity", 0.1, 2000, [names[i] for i in order], counts, trainable)
    held_names = {names[i] for i in np.flatnonzero(held.held_identities)}
    assert held_names == {names[order[i]] for i in np.flatnonzero(again.held_identities)}
    data = examples(counts)
    train, valid = as_pairs(held.train_part(data)), as_pairs(held.validation_part(data))
    assert len(valid) == 40 and len(train) == 360
    held_ids = set(np.flatnonzero(held.held_identities))
    assert {label for _, label in valid} == held_ids
    assert not {label for _, label in train} & held_ids
    assert not held.trainable(trainable)[list(held_ids)].any()
    # A cap on images stops after two identities.
    capped = validation.plan("identity", 0.5, 25, names, counts, trainable)
    assert capped.identities == 2 and capped.images == 20


def test_few_identities_are_held_back_by_image_under_the_identity_minimum():
    counts = np.full(12, 11)
    names = [str(i) for i in range(12)]
    held = validation.plan("identity", 0.1, 2000, names, counts, counts > 1, 0, 20)
    assert held.by == "image"  # 12 < 20
    # The minimum never goes below 2 held and 3 left to train on.
    many = np.full(4, 500)
    four = validation.plan("identity", 0.1, 2000, names[:4], many, many > 1, 0, 1)
    assert four.by == "image"


def test_few_classes_are_held_back_whole_and_scored_on_a_sample():
    """Six classes of 600 images: two whole classes held back (the epoch is picked on classes
    the model never trains on), scored on a deterministic sample of about max_images."""
    names = [f"class-{i}" for i in range(6)]
    counts = np.full(6, 600)
    held = validation.plan("identity", 0.1, 300, names, counts, counts > 1, 0, 5)
    assert held.by == "identity" and held.identities == 2 and held.images == 1200
    assert held.train_images == 2400 and held.scored_images == 300
    data = examples(counts)
    train, valid = as_pairs(held.train_part(data)), as_pairs(held.validation_part(data))
    held_ids = set(np.flatnonzero(held.held_identities))
    assert len(train) == 2400 and not {label for _, label in train} & held_ids
    assert {label for _, label in valid} == held_ids and 220 < len(valid) < 380
    assert as_pairs(held.validation_part(data)) == valid  # The same sample every pass.
    assert held.trainable(counts > 1).sum() == 4


def test_by_image_is_a_deterministic_capped_share_of_every_identity():
    counts = np.full(10, 300)
    held = validation.plan("image", 0.1, 200, [str(i) for i in range(10)], counts, counts > 1)
    assert held.by == "image" and held.image_buckets == round(200 / 3000 * validation.BUCKETS)
    data = examples(counts)
    valid = as_pairs(held.validation_part(data))
    train = as_pairs(held.train_part(data))
    assert as_pairs(held.validation_part(data)) == valid  # The same slice every pass.
    assert sorted(valid + train) == as_pairs(data) and not set(valid) & set(train)
    assert 130 < len(valid) < 270
    assert len({label for _, label in valid}) == 10  # Closed set: every identity validated.
    assert held.trainable(counts > 1).all()


def test_no_slice_when_off_or_too_small():
    counts = np.full(3, 4)
    names = ["a", "b", "c"]
    assert validation.plan("image", 0.0, 2000, names, counts, counts > 1) is None
    assert validation.plan("image", 0.1, 2000, names, counts, counts > 1) is None
    plenty = np.full(3, 400)
    assert validation.plan("image", 0.1, 2000, names, plenty, plenty > 1, 1200) is not None
    assert validation.plan("image", 0.1, 2000, names, plenty, plenty > 1, 1201) is None
    with pytest.raises(ValueError, match="validation_by"):
        validation.plan("person", 0.1, 2000, names, counts, counts > 1)


def test_why_no_slice_names_the_setting_that_turned_it_off():
    assert validation.why_no_slice(0.0, 10_000, 50_000) == "validation_fraction is 0"
    assert "1433 train images, under validation_min_train_images (10000)" in (
        validation.why_no_slice(0.1, 10_000, 1433)
    )
    assert validation.why_no_slice(0.1, 10_000, 10_000) is None  # a slice, if big enough


def test_hold_out_validation_gives_fit_disjoint_train_and_validation_streams():
    examples, count = tiny_dataset(identities=4, per_identity=40)
    hparams = dataclasses.replace(TINY, validation_fraction=0.2, validation_min_train_images=160)

    def hold_out(hparams):
        names = ["a", "b", "c", "d"]
        return validation.hold_out_validation(
            hparams, examples, examples, names, np.full(4, 40), np.ones(4, bool)
        )

    split = hold_out(hparams)
    assert split.held.by == "image" and split.train_images == 160 - split.held.images
    train = {image.numpy().tobytes() for image, _ in split.train}
    held = {image.numpy().tobytes() for image, _ in split.validation}
    assert held and not train & held and len(train) + len(held) == count
    off = hold_out(dataclasses.replace(hparams, validation_fraction=0.0))
    assert off.validation is None and off.train_images == 160
    small = hold_out(dataclasses.replace(hparams, validation_min_train_images=161))
    assert small.validation is None and small.train_images == 160  # Too small: trains on all.
