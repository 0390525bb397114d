"""The Trainer's run_fn: trains the triplet-loss embedding network and exports it for serving.

`fit` is the training loop on any tf.data stream of (image, label id) pairs, so the benchmark
(benchmarks/triplet_benchmark.py) and the tests train with the same code as the pipeline.
"""

import dataclasses
import hashlib
import json
import math
import os
import time

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs

from components.reporting.training_figures import TrainingFigures, take_sample
from components.trainer import data, export, model, satisfied, triplet_loss, validation
from components.trainer.hparams import HParams
from components.trainer.selection import LOG_PREFIX, ModelSelection
from components.transform import preprocessing

keras = tf.keras
EVAL_BATCH_SIZE = 256
BACKUP_FOLDER = "training_backup"
TRAINING_RECORD = "training.json"  # In the model run dir: validation slice and kept epoch.
# The validation slice is kept in memory after its first pass when it fits in this: otherwise
# every epoch would re-read the whole train split (twice) to find it.
VALIDATION_CACHE_BYTES = 512 << 20
# So are the training images (decoded, parsed and filtered), so that later passes leave the
# CPU to training instead of re-reading gzipped TFRecords (60,000 Fashion-MNIST images: 190 MB).
TRAIN_CACHE_BYTES = 1 << 30


def distribution_strategy() -> tf.distribute.Strategy:
    """Several workers when TF_CONFIG says so, all GPUs of this worker when it has 2+, else
    TensorFlow's default strategy on the one device (GPU or CPU).

    Not MirroredStrategy on one device: its multi-device input iterator buys nothing there,
    and deleting it at the end of training waited out tf.data's autotuning sleep (up to 35 s
    in the Trainer, see data.without_autotuning).
    """
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if sum(len(v) for v in cluster.values()) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def cpu_has_bfloat16_units() -> bool:
    """Whether this x86 CPU computes bfloat16 natively (AMX or AVX-512 BF16), per /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def precision_policy(setting: str) -> str:
    """The Keras mixed-precision policy for the `mixed_precision` hyperparameter.

    auto: float16 on a GPU; bfloat16 on a CPU with bfloat16 units (oneDNN then runs the convs
    and matmuls about twice as fast); float32 otherwise. Heads and losses stay float32.
    """
    if setting == "off":
        return "float32"
    if setting in ("float16", "bfloat16"):
        return f"mixed_{setting}"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bfloat16_units() else "float32"


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from peak / warmup_steps to `peak`, then cosine decay to 0 at total_steps."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(min(warmup_steps, total_steps))

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = float(self.warmup_steps)
        warming = self.peak * (step + 1.0) / max(warmup, 1.0)
        progress = tf.clip_by_value((step - warmup) / max(self.total_steps - warmup, 1.0), 0, 1)
        decaying = 0.5 * self.peak * (1.0 + tf.cos(math.pi * progress))
        return tf.where(step < warmup, warming, decaying)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def learning_rate(hparams: HParams, steps_per_epoch: int):
    """Adam's learning rate: a constant, or WarmupCosine over the whole run."""
    if hparams.lr_schedule == "constant":
        return hparams.learning_rate
    total = hparams.epochs * steps_per_epoch
    warmup = round(hparams.warmup_epochs * steps_per_epoch)
    return WarmupCosine(hparams.learning_rate, total, warmup)


class EpochLogger(keras.callbacks.Callback):
    """One line per epoch on stdout (loss, share of active triplets, validation loss and
    retrieval metrics, learning rate, speed).

    Also puts `learning_rate` into the epoch logs, so the TensorBoard callback after it and the
    History get it, and records the training time of each epoch without its evaluation.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, images_per_step: int):
        super().__init__()
        self.epochs = epochs
        self.images_per_epoch = steps_per_epoch * images_per_step
        self.train_seconds: list[float] = []
        self._start = self._end = 0.0

    def current_learning_rate(self) -> float:
        optimizer = self.model.optimizer
        rate = optimizer.learning_rate
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            # The rate of the step just taken.
            rate = rate(tf.maximum(optimizer.iterations - 1, 0))
        return float(tf.keras.backend.get_value(rate))

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._end = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self._end <= self._start:  # No evaluation this epoch.
            self._end = time.perf_counter()
        seconds = self._end - self._start
        self.train_seconds.append(seconds)
        logs["learning_rate"] = self.current_learning_rate()
        line = (
            f"epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', float('nan')):.4f}, "
            f"active triplets {percent(logs.get('active_triplets', float('nan')))}"
        )
        if "val_loss" in logs:
            line += (
                f", validation loss {logs['val_loss']:.4f}"
                f" (active {percent(logs.get('val_active_triplets', float('nan')))})"
            )
        if LOG_PREFIX + "map_at_r" in logs:
            line += (
                f", MAP@R {logs[LOG_PREFIX + 'map_at_r']:.4f}"
                f", P@1 {logs[LOG_PREFIX + 'precision_at_1']:.4f}"
            )
        line += (
            f", lr {logs['learning_rate']:.2e}, {seconds:.1f} s, "
            f"{self.images_per_epoch / max(seconds, 1e-9):.0f} images/s"
        )
        # Printed like Keras's own verbose=2 epoch line (which this replaces), so it shows in
        # the CLI, the Trainer's log and a notebook whatever the logging set-up.
        print(line, flush=True)


def percent(share: float) -> str:
    """A share as a percentage; one under 0.1% but not 0 keeps two significant digits, so the
    epoch line never shows a loss still teaching as 0.0% (satisfied.py stops at exactly 0)."""
    if 0 < share < 0.001:
        return f"{100 * share:.2g}%"
    return f"{100 * share:.1f}%"


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
    policy = precision_policy(hparams.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    try:
        hparams = capped_to_identities(hparams, int(np.sum(trainable)))
        steps_per_epoch = hparams.epoch_steps(train_images)
        train_batches = training_batches(hparams, train_examples, trainable)
        strategy = distribution_strategy()
        logging.info(
            "Training on %d replica(s), %s, %d steps/epoch of %d images: %s",
            strategy.num_replicas_in_sync,
            policy,
            steps_per_epoch,
            hparams.images_per_step,
            hparams,
        )
        trainer = compiled_trainer(hparams, steps_per_epoch, strategy)
        logger = EpochLogger(hparams.epochs, steps_per_epoch, hparams.images_per_step)
        stopper = satisfied.StopWhenSatisfied() if hparams.stop_when_satisfied else None
        selection = None
        if validation_examples is not None:
            selection = ModelSelection(
                trainer.embedding_network,
                validation_batches(hparams, validation_examples),
                hparams.selection_metric,
                hparams.early_stopping_patience,
                state_dir=backup_dir and backup_dir.rstrip("/") + "-selection",
            )
        start = time.perf_counter()
        history = trainer.fit(
            train_batches,
            epochs=hparams.epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=validation_loss_batches(hparams, validation_examples),
            callbacks=epoch_callbacks(selection, logger, stopper, log_dir, backup_dir, callbacks),
            verbose=0,
        )
        satisfied_epoch = stopper.satisfied_epoch if stopper else 0
        if satisfied_epoch:
            satisfied.recalibrate_batch_norm(
                trainer.training_network, training_images(hparams, train_batches)
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


def epoch_callbacks(selection, logger, stopper, log_dir, backup_dir, extra) -> list:
    """In order: model selection first (the epoch line, TensorBoard and the History show its
    metrics), the epoch line, the stop when satisfied, TensorBoard, the backup, then `extra`."""
    callbacks = [selection] if selection else []
    callbacks.append(logger)
    if stopper:
        callbacks.append(stopper)
    if log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
    if backup_dir:
        callbacks.append(keras.callbacks.BackupAndRestore(backup_dir))
    return callbacks + list(extra)


def capped_to_identities(hparams: HParams, identities: int) -> HParams:
    """P x K batches cannot hold more identities than there are to train on."""
    if hparams.triplet_strategy == "random" or hparams.identities_per_batch <= identities:
        return hparams
    logging.warning(
        "identities_per_batch %d > %d trainable identities: using %d",
        hparams.identities_per_batch,
        identities,
        identities,
    )
    return dataclasses.replace(hparams, identities_per_batch=identities)


def _shuffle_buffer(hparams: HParams) -> int:
    return data.shuffle_buffer_size(hparams.image_shape)


def training_batches(
    hparams: HParams, train_examples: tf.data.Dataset, trainable: np.ndarray
) -> tf.data.Dataset:
    """Endless training batches: P x K class-balanced, or the notebook's random triplets."""
    if hparams.triplet_strategy == "random":
        return data.random_triplet_batches(
            train_examples,
            trainable,
            hparams.triplets_per_batch,
            hparams.seed,
            _shuffle_buffer(hparams),
        )
    return data.class_balanced_batches(
        train_examples,
        trainable,
        hparams.identities_per_batch,
        hparams.images_per_identity,
        hparams.seed,
        _shuffle_buffer(hparams),
    )


def training_images(hparams: HParams, train_batches: tf.data.Dataset) -> tf.data.Dataset:
    """The images of `training_batches` (the anchors of the notebook's random triplets)."""
    if hparams.triplet_strategy == "random":
        return train_batches.map(lambda triplets: triplets["anchor"])
    return train_batches.map(lambda images, labels: images)


def _validation_buffer(hparams: HParams) -> int:
    return min(_shuffle_buffer(hparams), 2048)


def validation_batches(hparams: HParams, validation_examples: tf.data.Dataset) -> tf.data.Dataset:
    """The validation slice in fixed batches, the same every epoch."""
    return data.evaluation_batches(
        validation_examples, EVAL_BATCH_SIZE, hparams.seed, _validation_buffer(hparams)
    )


def validation_loss_batches(
    hparams: HParams, validation_examples: tf.data.Dataset | None
) -> tf.data.Dataset | None:
    """What Keras computes the validation loss on (None: no slice): the slice's batches, or
    random triplets drawn from it for the notebook's method."""
    if validation_examples is None:
        return None
    if hparams.triplet_strategy == "random":
        return data.random_triplet_batches(
            validation_examples,
            None,
            hparams.triplets_per_batch,
            hparams.seed,
            _validation_buffer(hparams),
            repeat=False,
        )
    return validation_batches(hparams, validation_examples)


def compiled_trainer(
    hparams: HParams, steps_per_epoch: int, strategy: tf.distribute.Strategy
) -> keras.Model:
    """The Keras model that trains the shared embedding network (its `embedding_network`),
    built and compiled under `strategy`."""
    with strategy.scope():
        training_network, embedding_network = model.build_networks(
            hparams.image_size,
            hparams.channels,
            hparams.embedding_dim,
            hparams.model,
            hparams.width,
        )
        augmentation = None
        if hparams.augment:
            augmentation = model.build_augmentation(
                hparams.augment_shift, hparams.augment_flip, hparams.seed
            )
        if hparams.triplet_strategy == "random":
            trainer = model.SiameseModel(
                training_network,
                hparams.margin,
                hparams.soft_margin,
                embedding_network,
                augmentation,
            )
        else:
            trainer = model.TripletModel(
                training_network, _mining_loss(hparams), embedding_network, augmentation
            )
        trainer.compile(optimizer=optimizer(hparams, steps_per_epoch))
    return trainer


def optimizer(hparams: HParams, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam, or AdamW with decoupled weight decay on the conv and dense kernels."""
    rate = learning_rate(hparams, steps_per_epoch)
    if not hparams.weight_decay:
        return keras.optimizers.Adam(rate)
    adamw = keras.optimizers.AdamW(rate, weight_decay=hparams.weight_decay)
    # Names of variables to leave alone: normalisation scales and offsets, and biases.
    adamw.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return adamw


def _mining_loss(hparams: HParams):
    mining = triplet_loss.get(hparams.triplet_strategy)

    def loss_fn(labels, embeddings):
        return mining(
            labels,
            embeddings,
            margin=hparams.margin,
            squared=hparams.squared_distance,
            soft=hparams.soft_margin,
        )

    return loss_fn


def float32_copy(network: keras.Model, hparams: HParams, policy: str) -> keras.Model:
    """The embedding network rebuilt in float32 with the trained weights (mixed precision
    trains faster; serving and evaluation compute in full precision)."""
    if policy == "float32":
        return network
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        _, copy = model.build_networks(
            hparams.image_size,
            hparams.channels,
            hparams.embedding_dim,
            hparams.model,
            hparams.width,
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(network.get_weights())
    return copy


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


@dataclasses.dataclass
class TrainingData:
    """The train split with the validation slice held back: what `fit` takes."""

    train: tf.data.Dataset  # (image, label id) pairs to train on
    validation: tf.data.Dataset | None  # the held-back slice, in a fixed order
    trainable: np.ndarray  # label ids with 2+ train images, held-back identities excluded
    train_images: int  # trainable images left to train on
    held: validation.ValidationSlice | None


def hold_out_validation(
    hparams: HParams,
    train_examples: tf.data.Dataset,
    examples_in_order: tf.data.Dataset,
    names: list[str],
    per_label_id: np.ndarray,
    trainable: np.ndarray,
) -> TrainingData:
    """Cuts the validation slice (validation.py) out of the train split, as the Trainer and the
    benchmark both do. `train_examples` and `examples_in_order` are the same examples, shuffled
    and in a fixed order; `per_label_id` counts the train images of each label id (`names`)."""
    held = validation.plan(
        hparams.validation_by,
        hparams.validation_fraction,
        hparams.validation_max_images,
        names,
        per_label_id,
        trainable,
        hparams.validation_min_train_images,
    )
    if held is None:
        return TrainingData(
            train_examples, None, trainable, int(per_label_id[trainable].sum()), None
        )
    validation_examples = held.validation_part(examples_in_order)
    if held.images * data.image_bytes(hparams.image_shape) <= VALIDATION_CACHE_BYTES:
        validation_examples = validation_examples.cache()
    return TrainingData(
        train=held.train_part(train_examples),
        validation=validation_examples,
        trainable=held.trainable(trainable),
        train_images=held.train_images,
        held=held,
    )


def train(
    hparams: HParams,
    tf_transform_output: tft.TFTransformOutput,
    train_files: list[str],
    eval_files: list[str],
    log_dir: str,
    backup_dir: str | None = None,
) -> tuple[TrainResult, TrainingData]:
    """`fit` on Transform's output (TFRecords of transformed examples), holding back the
    validation slice (validation.py) from the train split; returns the result and the split."""
    counts = data.identity_counts(tf_transform_output)
    trainable = data.trainable_identities(tf_transform_output)
    names = [
        v.decode() for v in tf_transform_output.vocabulary_by_name(preprocessing.LABEL_VOCABULARY)
    ]
    split = hold_out_validation(
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
    result = fit(
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
    write_training_record(fn_args.model_run_dir, result, split, hparams)


def write_training_record(
    model_run_dir: str, result: TrainResult, split: TrainingData, hparams: HParams
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
        "model_selection": result.selection,
        "epochs_run": result.epochs_run,
        "satisfied_epoch": result.satisfied_epoch,
        "train_seconds": round(result.train_seconds, 1),
    }
    with tf.io.gfile.GFile(os.path.join(model_run_dir, TRAINING_RECORD), "w") as f:
        json.dump(record, f, indent=2)
    return record
