"""The recipe benchmark harness runs (its no-training row; the full benchmark is not a test)."""

import numpy as np
import pytest

from benchmarks import datasets, recipe_benchmark


def test_pixels_row_on_digits_and_the_table(tmp_path):
    data = datasets.digits(8, str(tmp_path / "digits"))
    assert data.protocol == datasets.GALLERY and data.train_x.shape[1:] == (8, 8, 1)
    assert abs(float(data.train_x.mean())) < 1e-4  # Standardised with train statistics.
    resized = datasets.digits(datasets.IMAGE_SIZE, str(tmp_path / "digits"))
    assert resized.train_x.shape[1:] == (28, 28, 1)  # What `siamese-tfx run` trains on.
    row = recipe_benchmark.run_one("pixels", data)
    assert 0.9 < row["precision_at_1"] <= 1.0 and 0.0 < row["map_at_r"] < 1.0
    assert np.isfinite(row["eer"]) and "val_at_far_0.01" in row
    assert "| digits | pixels | " in recipe_benchmark.format_table([row])


def test_plain_reference_and_default_hparams_follow_the_data():
    data = datasets.Dataset(
        "x", np.zeros((4, 28, 28, 1)), np.arange(4), np.zeros((2, 28, 28, 1)), np.arange(2), "open"
    )
    plain = recipe_benchmark.hparams_for("plain", data, [])
    assert (plain.model, plain.margin, plain.identities_per_batch) == ("plain", 0.2, 4)
    default = recipe_benchmark.hparams_for("default", data, ["epochs=2"])
    assert (default.validation_by, default.epochs, default.image_size) == ("identity", 2, 28)
    capped = recipe_benchmark.hparams_for("plain", data, [], ["epochs=8"])
    assert (capped.epochs, capped.margin) == (8, 0.2)
    assert "capped at 8" in recipe_benchmark.note_for("plain", capped, "plain")
    assert recipe_benchmark.note_for("plain", plain, "plain") == ""


def test_digits_open_trains_on_0_to_5_and_tests_on_6_to_9(tmp_path):
    data = datasets.LOADERS["digits-open"](8, str(tmp_path / "digits"))
    assert data.protocol == datasets.OPEN and data.train_x.shape[1:] == (8, 8, 1)
    assert set(data.train_y) == set(range(6)) and set(data.test_y) == set(range(6, 10))
    assert len(data.train_x) + len(data.test_x) == 1797  # Both splits of the 80/20 split.
    row = recipe_benchmark.run_one("pixels", data)
    assert row["dataset"] == "digits-open" and 0.5 < row["precision_at_1"] <= 1.0


def test_open_classes_trains_on_the_first_classes_and_scores_the_last(tmp_path):
    from benchmarks import open_classes

    data = datasets.digits(8, str(tmp_path / "digits"))
    subset = open_classes.open_set(data, 4, 2)
    assert subset.protocol == datasets.OPEN and subset.name == "digits, 4 classes -> 2"
    assert set(subset.train_y) == set(range(4)) and set(subset.test_y) == {8, 9}
    assert len(subset.test_x) == np.isin(np.concatenate([data.train_y, data.test_y]), [8, 9]).sum()
    for bad in (1, 9):
        with pytest.raises(ValueError, match="--train-classes"):
            open_classes.open_set(data, bad, 2)
