"""training.json in the model run directory: the Trainer's record of the validation slice (or
why there is none), the epoch kept with its validation metrics, and the epochs run.

The Trainer writes it (`write_training_record`); the run summary reads it back
(`read_training_record`).
"""

import json
import os

import tensorflow as tf

from components.trainer import fit, validation
from components.trainer.hparams import HParams

TRAINING_RECORD = "training.json"  # In the model run dir: validation slice and kept epoch.


def write_training_record(
    model_run_dir: str, result: fit.TrainResult, split: validation.TrainingData, hparams: HParams
) -> dict:
    """training.json: the validation slice (or why there is none), the kept epoch and its
    validation metrics."""
    held = split.held
    record = {
        "validation_slice": held.describe() if held else None,
        "no_validation_slice": None
        if held
        else validation.why_no_slice(
            hparams.validation_fraction, hparams.validation_min_train_images, split.train_images
        )
        or validation.SLICE_TOO_SMALL,
        "loss": hparams.loss,
        "model_selection": result.selection,
        "epochs_run": result.epochs_run,
        "satisfied_epoch": result.satisfied_epoch,
        "train_seconds": round(result.train_seconds, 1),
    }
    with tf.io.gfile.GFile(os.path.join(model_run_dir, TRAINING_RECORD), "w") as f:
        json.dump(record, f, indent=2)
    return record


def read_training_record(model_run_uri: str) -> dict | None:
    """The training.json of a Trainer's model run (`model_run_uri`), None when it has none."""
    path = os.path.join(model_run_uri, TRAINING_RECORD)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
