"""The training loop: `fit` trains the embedding network on any tf.data stream of (image,
label id) pairs.

The Trainer (run.py), the benchmarks (benchmarks/triplet_benchmark.py) and the tests all train
through `fit`, so with the same model, loss, input and model-selection code. What differs
between losses and triplet strategies is in strategies.py; the devices and precision in
devices.py.
"""

import dataclasses
import time

import numpy as np
import tensorflow as tf
from absl import logging

from components.trainer import devices, model, satisfied, schedule, strategies, validation
from components.trainer.callbacks import EpochLogger, epoch_callbacks
from components.trainer.hparams import HParams
from components.trainer.selection import ModelSelection

keras = tf.keras


@dataclasses.dataclass
class TrainResult:
    embedding_network: keras.Model  # float32, L2-normalised output: what is served
    history: dict  # per-epoch logs: loss, active_triplets, val_loss, learning_rate, ...
    epochs_run: int  # epochs trained in this call (fewer after a resume or an early stop)
    train_seconds: float  # training time of those epochs, evaluation excluded
    wall_seconds: float  # the whole fit call
    images_per_second: float  # images embedded in training steps / train_seconds
    selection: dict | None = None  # ModelSelection.record(): kept epoch and validation metrics
    # The epoch after which the loss was satisfied and training stopped (satisfied.py); 0: never.
    satisfied_epoch: int = 0


def fit(
    hparams: HParams,
    train_examples: tf.data.Dataset,
    validation_examples: tf.data.Dataset | None,
    trainable: np.ndarray,
    train_images: int,
    *,
    log_dir: str | None = None,
    backup_dir: str | None = None,
    callbacks: tuple = (),
) -> TrainResult:
    """Trains on (image, label id) streams; `trainable` marks label ids with 2+ train images.

    `train_images` (of trainable identities) sets the epoch length (HParams.epoch_steps).
    `validation_examples` (optional; held back from training, see validation.py): each epoch
    its loss and retrieval metrics; the epoch with the best `selection_metric` is kept, and
    training stops after `early_stopping_patience` epochs without improvement (selection.py).
    Without it every epoch runs and the last is kept.
    `log_dir` gets TensorBoard summaries; `callbacks` are extra Keras callbacks (run last);
    `backup_dir` turns on BackupAndRestore there: a killed run, re-run with the same directory,
    resumes after its last finished epoch; the backup is deleted when training ends.
    """
    keras.utils.set_random_seed(hparams.seed)
    previous_policy = keras.mixed_precision.global_policy()
    policy = devices.precision_policy(hparams.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    try:
        method = strategies.for_hparams(hparams)
        hparams = capped_to_identities(hparams, int(np.sum(trainable)))
        steps_per_epoch = hparams.epoch_steps(train_images)
        train_batches = method.training_batches(hparams, train_examples, trainable)
        strategy = devices.distribution_strategy()
        logging.info(
            "Training on %d replica(s), %s, %d steps/epoch of %d images: %s",
            strategy.num_replicas_in_sync,
            policy,
            steps_per_epoch,
            hparams.images_per_step,
            hparams,
        )
        trainer = compiled_trainer(hparams, steps_per_epoch, strategy, len(trainable))
        logger = EpochLogger(hparams.epochs, steps_per_epoch, hparams.images_per_step, method.terms)
        stopper = None
        if hparams.stop_when_satisfied and method.satisfiable:
            stopper = satisfied.StopWhenSatisfied(hparams.loss.replace("_", "-"), method.terms)
        elif hparams.stop_when_satisfied:
            logging.info("loss %s is never satisfied: every epoch runs", hparams.loss)
        selection = None
        if validation_examples is not None:
            selection = ModelSelection(
                trainer.embedding_network,
                validation.validation_batches(hparams, validation_examples),
                hparams.selection_metric,
                hparams.early_stopping_patience,
                state_dir=backup_dir and backup_dir.rstrip("/") + "-selection",
            )
        start = time.perf_counter()
        validation_data = None  # What Keras computes the validation loss on.
        if validation_examples is not None:
            validation_data = method.validation_loss_batches(hparams, validation_examples)
        history = trainer.fit(
            train_batches,
            epochs=hparams.epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=validation_data,
            callbacks=epoch_callbacks(selection, logger, stopper, log_dir, backup_dir, callbacks),
            verbose=0,
        )
        satisfied_epoch = stopper.satisfied_epoch if stopper else 0
        if satisfied_epoch:
            satisfied.recalibrate_batch_norm(
                trainer.training_network, method.training_images(train_batches)
            )
        wall_seconds = time.perf_counter() - start
        epochs_run, train_seconds = len(logger.train_seconds), sum(logger.train_seconds)
        return TrainResult(
            embedding_network=float32_copy(trainer.embedding_network, hparams, policy),
            history=history.history,
            epochs_run=epochs_run,
            train_seconds=train_seconds,
            wall_seconds=wall_seconds,
            images_per_second=epochs_run * logger.images_per_epoch / max(train_seconds, 1e-9),
            selection=selection.record() if selection else None,
            satisfied_epoch=satisfied_epoch,
        )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def capped_to_identities(hparams: HParams, identities: int) -> HParams:
    """P x K batches cannot hold more identities than there are to train on."""
    capped = strategies.for_hparams(hparams).caps_identities
    if not capped or hparams.identities_per_batch <= identities:
        return hparams
    logging.warning(
        "identities_per_batch %d > %d trainable identities: using %d",
        hparams.identities_per_batch,
        identities,
        identities,
    )
    return dataclasses.replace(hparams, identities_per_batch=identities)


def compiled_trainer(
    hparams: HParams,
    steps_per_epoch: int,
    strategy: tf.distribute.Strategy,
    identities: int = 0,
) -> keras.Model:
    """The Keras model that trains the shared embedding network (its `embedding_network`),
    built and compiled under `strategy`; which model, the loss or triplet strategy says
    (strategies.py). `identities`: the number of label ids, for a proxy loss's head."""
    with strategy.scope():
        training_network, embedding_network = model.build_networks_for(hparams)
        augmentation = None
        if hparams.augment:
            augmentation = model.build_augmentation(
                hparams.augment_shift, hparams.augment_flip, hparams.seed
            )
        trainer = strategies.for_hparams(hparams).trainer(
            hparams, training_network, embedding_network, augmentation, identities
        )
        trainer.compile(optimizer=optimizer(hparams, steps_per_epoch))
    return trainer


def optimizer(hparams: HParams, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam, or AdamW with decoupled weight decay on the conv and dense kernels."""
    rate = schedule.learning_rate(hparams, steps_per_epoch)
    if not hparams.weight_decay:
        return keras.optimizers.Adam(rate)
    adamw = keras.optimizers.AdamW(rate, weight_decay=hparams.weight_decay)
    # Names of variables to leave alone: normalisation scales and offsets, and biases.
    adamw.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return adamw


def float32_copy(network: keras.Model, hparams: HParams, policy: str) -> keras.Model:
    """The embedding network rebuilt in float32 with the trained weights (mixed precision
    trains faster; serving and evaluation compute in full precision)."""
    if policy == "float32":
        return network
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        _, copy = model.build_networks_for(hparams)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(network.get_weights())
    return copy
