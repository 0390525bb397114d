"""The run summary's line on training: the kept epoch, or why no epoch was chosen."""

from pipeline import summary


def test_the_summary_says_which_epoch_was_kept_on_the_validation_slice():
    training = {
        "validation_slice": {"by": "image", "images": 2000},
        "no_validation_slice": None,
        "epochs_run": 12,
        "model_selection": {
            "metric": "map_at_r",
            "kept_epoch": 11,
            "epochs_run": 12,
            "stopped_early": False,
            "kept_validation_metrics": {"map_at_r": 0.84},
        },
    }
    (line,) = summary._selection_lines(training)
    assert line.startswith("Kept epoch 11 of 12: validation map_at_r 0.8400 on 2000 held-back")


def test_the_summary_says_why_there_was_no_validation_slice():
    training = {
        "validation_slice": None,
        "no_validation_slice": "1433 train images, under validation_min_train_images (10000)",
        "epochs_run": 12,
        "model_selection": None,
    }
    (line,) = summary._selection_lines(training)
    assert line == (
        "Kept the last of 12 epochs, no validation slice: 1433 train images, under "
        "validation_min_train_images (10000)"
    )
    assert summary._selection_lines(None) == []


def test_the_summary_says_training_stopped_when_the_loss_was_satisfied():
    training = {
        "validation_slice": None,
        "no_validation_slice": "1433 train images, under validation_min_train_images (10000)",
        "epochs_run": 6,
        "satisfied_epoch": 6,
        "model_selection": None,
    }
    (line,) = summary._selection_lines(training)
    assert line.startswith(
        "Kept the last of 6 epochs (stopped there: the triplet loss was 0 on every training "
        "batch), no validation slice: 1433"
    )
    selected = {
        "validation_slice": {"by": "identity", "images": 12000, "scored_images": 2000},
        "loss": "multi_similarity",
        "epochs_run": 8,
        "satisfied_epoch": 8,
        "model_selection": {
            "metric": "map_at_r",
            "kept_epoch": 5,
            "epochs_run": 8,
            "stopped_early": False,
            "kept_validation_metrics": {"map_at_r": 0.9},
        },
    }
    (line,) = summary._selection_lines(selected)
    assert line.startswith(
        "Kept epoch 5 of 8 (stopped after epoch 8: the multi-similarity loss was 0 on every "
        "training batch): validation map_at_r 0.9000 on 2000 held-back train images (by identity)"
    )
