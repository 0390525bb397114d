"""The Trainer's run_fn: trains the triplet-loss embedding network and exports it for serving.

`train` is `fit` (fit.py) on Transform's output, with the validation slice held back
(validation.py); `backup_dir_for` gives a re-run of the same Trainer its training backup again.
"""

import hashlib
import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs

from components.reporting.training_figures import TrainingFigures, take_sample
from components.trainer import data, export, fit, record, validation
from components.trainer.hparams import HParams
from components.transform import preprocessing

BACKUP_FOLDER = "training_backup"
# The training images (decoded, parsed and filtered) are kept in memory after their first pass
# when they fit in this, so that later passes leave the CPU to training instead of re-reading
# gzipped TFRecords (60,000 Fashion-MNIST images: 190 MB).
TRAIN_CACHE_BYTES = 1 << 30


def backup_dir_for(model_run_dir: str, hparams: HParams, inputs: dict) -> str:
    """A BackupAndRestore directory that a re-run of the same Trainer finds again.

    A TFX re-run gives the Trainer a new model_run_dir (<pipeline root>/<Trainer>/model_run/<id>),
    so the backup lives beside it, in <pipeline root>/<Trainer>/training_backup/<hash>, the hash
    over the hyperparameters and the input URIs (transformed examples, Transform graph): the same
    inputs and settings resume, anything else starts afresh.
    """
    settings = {k: v for k, v in hparams.to_config().items() if k != "backup_dir"}
    key = json.dumps({"hparams": settings, "inputs": inputs}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    run_parent = os.path.dirname(model_run_dir.rstrip("/"))  # No normpath: it breaks gs://.
    if os.path.basename(run_parent) == "model_run":
        run_parent = os.path.dirname(run_parent)
    return os.path.join(run_parent, BACKUP_FOLDER, digest)


def train(
    hparams: HParams,
    tf_transform_output: tft.TFTransformOutput,
    train_files: list[str],
    eval_files: list[str],
    log_dir: str,
    backup_dir: str | None = None,
) -> tuple[fit.TrainResult, validation.TrainingData]:
    """`fit` on Transform's output (TFRecords of transformed examples), holding back the
    validation slice (validation.py) from the train split; returns the result and the split."""
    counts = data.identity_counts(tf_transform_output)
    trainable = data.trainable_identities(tf_transform_output)
    names = [
        v.decode() for v in tf_transform_output.vocabulary_by_name(preprocessing.LABEL_VOCABULARY)
    ]
    split = validation.hold_out_validation(
        hparams,
        data.read_transformed(train_files, tf_transform_output, True, hparams.seed),
        data.read_transformed(train_files, tf_transform_output, False, hparams.seed),
        names,
        np.array([counts.get(name, 0) for name in names]),
        trainable,
    )
    # Figures: validation embeddings when there is a slice (eval labels of an open-set split are
    # unknown to Transform's vocabulary), else the eval split's. Not from split.validation: a
    # partial read of its in-memory cache would be thrown away, with a warning.
    if split.held is not None:
        figure_examples = split.held.validation_part(
            data.read_transformed(train_files, tf_transform_output, False, hparams.seed)
        )
    else:
        figure_examples = data.read_transformed(eval_files, tf_transform_output, False, 0)
    figures = TrainingFigures(
        os.path.join(log_dir, "figures"),
        eval_sample=take_sample(figure_examples.batch(256)),
        train_sample=take_sample(split.train.batch(256), count=256),
        sample="eval" if split.validation is None else "validation",
    )
    train_examples = split.train
    if split.train_images * data.image_bytes(hparams.image_shape) <= TRAIN_CACHE_BYTES:
        train_examples = train_examples.cache()
    result = fit.fit(
        hparams,
        train_examples,
        split.validation,
        split.trainable,
        split.train_images,
        log_dir=log_dir,
        backup_dir=backup_dir,
        callbacks=(figures,),
    )
    return result, split


def run_fn(fn_args: FnArgs) -> None:
    """TFX Trainer entry point (`run_fn='components.trainer.run.run_fn'`)."""
    hparams = HParams.from_config(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    backup_dir = hparams.backup_dir or backup_dir_for(
        fn_args.model_run_dir,
        hparams,
        {
            "train_files": sorted(fn_args.train_files),
            "eval_files": sorted(fn_args.eval_files),
            "transform_output": fn_args.transform_output,
        },
    )
    logging.info("Training backup (resumed by a re-run after a failure): %s", backup_dir)
    result, split = train(
        hparams,
        tf_transform_output,
        fn_args.train_files,
        fn_args.eval_files,
        fn_args.model_run_dir,
        backup_dir,
    )
    export.export_serving_model(
        result.embedding_network, tf_transform_output, fn_args.serving_model_dir
    )
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "hparams.json"), "w") as f:
        json.dump(hparams.to_config(), f, indent=2)
    record.write_training_record(fn_args.model_run_dir, result, split, hparams)
