"""The Trainer's run_fn: trains the triplet-loss embedding network and exports it for serving."""

import json
import os

import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs

from components.trainer import data, export, model, triplet_loss
from components.trainer.hparams import HParams

EVAL_BATCH_SIZE = 256


def distribution_strategy() -> tf.distribute.Strategy:
    """All visible GPUs (or the CPU) on this worker; several workers when TF_CONFIG says so."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if sum(len(v) for v in cluster.values()) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()


def train(
    hparams: HParams,
    tf_transform_output: tft.TFTransformOutput,
    train_files: list[str],
    eval_files: list[str],
    log_dir: str,
) -> tf.keras.Model:
    """Fits the embedding network; returns it (the TripletModel wrapper is only for training)."""
    tf.keras.utils.set_random_seed(hparams.seed)
    if tf.config.list_physical_devices("GPU"):
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    trainable = data.trainable_identities(tf_transform_output)
    train_images = sum(
        count for identity, count in data.identity_counts(tf_transform_output).items() if count >= 2
    )
    steps_per_epoch = hparams.steps_per_epoch or max(1, train_images // hparams.batch_size)
    train_batches = data.class_balanced_batches(
        data.read_transformed(train_files, tf_transform_output, True, hparams.seed),
        trainable,
        hparams.identities_per_batch,
        hparams.images_per_identity,
        hparams.seed,
    )
    eval_batches = data.evaluation_batches(
        data.read_transformed(eval_files, tf_transform_output, False, hparams.seed), EVAL_BATCH_SIZE
    )

    strategy = distribution_strategy()
    logging.info("Training on %d replica(s): %s", strategy.num_replicas_in_sync, hparams)
    mining = triplet_loss.get(hparams.triplet_strategy)

    def loss_fn(labels, embeddings):
        return mining(
            labels,
            tf.cast(embeddings, tf.float32),
            margin=hparams.margin,
            squared=hparams.squared_distance,
            soft=hparams.soft_margin,
        )

    with strategy.scope():
        embedding_network = model.build_embedding_network(
            hparams.image_size, hparams.channels, hparams.embedding_dim, hparams.model
        )
        triplet_model = model.TripletModel(embedding_network, loss_fn)
        triplet_model.compile(optimizer=tf.keras.optimizers.Adam(hparams.learning_rate))
    triplet_model.fit(
        train_batches,
        epochs=hparams.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=eval_batches,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch")],
        verbose=2,
    )
    return embedding_network


def run_fn(fn_args: FnArgs) -> None:
    """TFX Trainer entry point (`run_fn='components.trainer.run.run_fn'`)."""
    hparams = HParams.from_config(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    embedding_network = train(
        hparams, tf_transform_output, fn_args.train_files, fn_args.eval_files, fn_args.model_run_dir
    )
    export.export_serving_model(embedding_network, tf_transform_output, fn_args.serving_model_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "hparams.json"), "w") as f:
        json.dump(hparams.to_config(), f, indent=2)
