"""The training loop: the optimizer, a real resume after a crash, model selection, and each
loss training digits embeddings (the proxy loss's head left out of the export)."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from components import keys
from components.evaluator import embedding_metrics as em
from components.trainer import export, fit, model
from components.trainer.hparams import LOSSES, TRIPLET, HParams


def test_weight_decay_shrinks_kernels_but_not_norms_or_biases():
    hparams = HParams(weight_decay=0.5, learning_rate=0.1, lr_schedule="constant")
    assert isinstance(
        fit.optimizer(dataclasses.replace(hparams, weight_decay=0.0), 10), tf.keras.optimizers.Adam
    )
    optimizer = fit.optimizer(hparams, 10)
    kernel, gamma, bias = (tf.Variable(tf.ones([3]), name=n) for n in ("kernel", "gamma", "bias"))
    optimizer.apply_gradients([(tf.zeros([3]), v) for v in (kernel, gamma, bias)])
    np.testing.assert_allclose(kernel.numpy(), 1 - 0.1 * 0.5)  # decayed by rate x decay
    np.testing.assert_allclose(gamma.numpy(), 1.0)
    np.testing.assert_allclose(bias.numpy(), 1.0)


TINY = HParams(
    image_size=8,
    model="cnn",
    width=4,
    embedding_dim=8,
    identities_per_batch=3,
    images_per_identity=4,
    epochs=3,
    steps_per_epoch=4,
    learning_rate=1e-2,
    warmup_epochs=0.25,
    mixed_precision="off",
    stop_when_satisfied=False,  # These tests count epochs; satisfied_test.py tests the stop.
)


def tiny_dataset(identities=4, per_identity=8):
    """A few dozen 8x8 images: a per-identity pattern plus noise."""
    rng = np.random.default_rng(0)
    patterns = rng.normal(size=(identities, 8, 8, 1))
    labels = np.repeat(np.arange(identities), per_identity).astype(np.int64)
    images = (patterns[labels] + 0.3 * rng.normal(size=(len(labels), 8, 8, 1))).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((images, labels)), len(labels)


class Preempted(RuntimeError):
    pass


class PreemptAfterFirstEpoch(tf.keras.callbacks.Callback):
    """Stands in for a preempted node: training dies right after epoch 1 (backed up)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.weights = [w.copy() for w in self.model.get_weights()]
            self.iterations = int(self.model.optimizer.iterations.numpy())
            raise Preempted("node preempted")


class Recorder(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_train_begin(self, logs=None):
        self.weights = [w.copy() for w in self.model.get_weights()]
        self.iterations = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_a_killed_training_resumes_from_its_last_epoch(tmp_path):
    examples, count = tiny_dataset()
    trainable = np.ones(4, dtype=bool)
    backup_dir = str(tmp_path / "backup")
    crash = PreemptAfterFirstEpoch()
    with pytest.raises(Preempted):
        fit.fit(
            TINY, examples, examples, trainable, count, backup_dir=backup_dir, callbacks=[crash]
        )
    assert os.listdir(backup_dir)

    recorder = Recorder()
    result = fit.fit(
        TINY,
        examples,
        examples,
        trainable,
        count,
        log_dir=str(tmp_path / "logs"),
        backup_dir=backup_dir,
        callbacks=[recorder],
    )
    assert recorder.epochs == [1, 2]  # epochs 2 and 3, counting from 1
    assert recorder.iterations == crash.iterations == TINY.steps_per_epoch
    for restored, saved in zip(recorder.weights, crash.weights, strict=True):
        np.testing.assert_array_equal(restored, saved)
    assert result.epochs_run == 2 and len(result.history["loss"]) == 2
    assert {"loss", "active_triplets", "val_loss", "val_map_at_r", "learning_rate"} <= set(
        result.history
    )
    assert not os.path.exists(backup_dir) or not os.listdir(backup_dir)  # deleted when done
    # Model selection resumed too: it remembers epoch 1, from before the crash.
    assert [e["epoch"] for e in result.selection["per_epoch"]] == [1, 2, 3]
    assert not os.path.exists(backup_dir + "-selection")
    # TensorBoard got the per-epoch loss, active-triplet share and learning rate.
    tags = summary_tags(tmp_path / "logs" / "train")
    assert {"epoch_loss", "epoch_active_triplets", "epoch_learning_rate"} <= tags
    validation_tags = summary_tags(tmp_path / "logs" / "validation")
    assert {"epoch_loss", "epoch_map_at_r", "epoch_precision_at_1"} <= validation_tags


def summary_tags(log_dir) -> set[str]:
    """The tags of every TensorBoard summary written below `log_dir`."""
    tags = set()
    for root, _, files in os.walk(log_dir):
        for name in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                tags.update(value.tag for value in event.summary.value)
    return tags


class EpochWeights(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.map_at_r, self.weights = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.map_at_r.append(logs["val_map_at_r"])
        self.weights.append([w.copy() for w in self.model.embedding_network.get_weights()])


@pytest.mark.parametrize("patience", [0, 1])
def test_model_selection_keeps_the_weights_of_the_best_validation_map_at_r(patience, capsys):
    train, count = tiny_dataset()
    validation, _ = tiny_dataset(identities=4, per_identity=5)  # Held back: not trained on.
    hparams = dataclasses.replace(
        TINY, epochs=5, early_stopping_patience=patience, learning_rate=0.2
    )
    recorder = EpochWeights()
    result = fit.fit(hparams, train, validation, np.ones(4, bool), count, callbacks=[recorder])
    # The last of equals: ties go to the later epoch.
    best = len(recorder.map_at_r) - 1 - int(np.argmax(recorder.map_at_r[::-1]))
    selection = result.selection
    assert selection["kept_epoch"] == best + 1 and selection["metric"] == "map_at_r"
    assert selection["kept_validation_metrics"]["map_at_r"] == recorder.map_at_r[best]
    assert [e["map_at_r"] for e in selection["per_epoch"]] == recorder.map_at_r
    assert result.epochs_run == len(recorder.map_at_r)
    if patience == 0:
        assert result.epochs_run == 5 and not selection["stopped_early"]
    elif result.epochs_run < 5:  # Stopped: `patience` epochs after the best, none better.
        assert selection["stopped_early"] and result.epochs_run - 1 - best == patience
    for final, kept in zip(
        result.embedding_network.get_weights(), recorder.weights[best], strict=True
    ):
        np.testing.assert_array_equal(final, kept)
    printed = capsys.readouterr().out
    assert "MAP@R" in printed and f"keeping epoch {best + 1} of {result.epochs_run}" in printed


# Digits (8x8) on a few training steps: enough to tell a loss that trains from one that does not.
DIGITS = HParams(
    image_size=8,
    width=8,
    embedding_dim=32,
    identities_per_batch=10,
    images_per_identity=8,
    epochs=1,
    steps_per_epoch=30,
    warmup_epochs=0.1,
    mixed_precision="off",
    stop_when_satisfied=False,
    validation_fraction=0.0,
)


@pytest.fixture(scope="module")
def digits():
    """Standardised digits: every 5th image of the 1,797 held out for scoring, the rest train."""
    data = load_digits()
    images = (data.images - data.images.mean()) / data.images.std()
    images = images[..., None].astype(np.float32)
    labels = data.target.astype(np.int64)
    held = np.arange(len(labels)) % 5 == 0
    return images[~held], labels[~held], images[held], labels[held]


def held_out_map_at_r(network, images, labels) -> float:
    embeddings = network(images, training=False).numpy()
    return em.retrieval_metrics(embeddings, labels)[em.MAP_AT_R]


class ProxyRecorder(tf.keras.callbacks.Callback):
    """The proxy head's class weights before and after training."""

    def on_train_begin(self, logs=None):
        self.before = self.model.loss_fn.proxies.numpy().copy()

    def on_train_end(self, logs=None):
        self.after = self.model.loss_fn.proxies.numpy().copy()


@pytest.mark.parametrize("loss", [name for name in LOSSES if name != TRIPLET])
def test_each_loss_trains_better_digits_embeddings_than_the_untrained_network(
    loss, digits, tmp_path
):
    train_images, train_labels, held_images, held_labels = digits
    hparams = dataclasses.replace(DIGITS, loss=loss)
    tf.keras.utils.set_random_seed(hparams.seed)  # fit starts from these same weights
    untrained = held_out_map_at_r(model.build_networks_for(hparams)[1], held_images, held_labels)
    recorder = ProxyRecorder() if loss == "arcface" else tf.keras.callbacks.Callback()
    result = fit.fit(
        hparams,
        tf.data.Dataset.from_tensor_slices((train_images, train_labels)),
        None,
        np.ones(10, bool),
        len(train_labels),
        callbacks=[recorder],
    )
    trained = held_out_map_at_r(result.embedding_network, held_images, held_labels)
    # On this budget: untrained 0.40; multi_similarity 0.71, margin 0.57, arcface 0.50.
    assert trained > untrained + 0.05, (loss, untrained, trained)
    assert np.all(np.isfinite(result.history["loss"]))
    if loss == "arcface":
        assert recorder.before.shape == (10, hparams.embedding_dim)
        assert not np.allclose(recorder.before, recorder.after)  # The proxies trained.
        assert_export_is_the_embedding_network_alone(
            result.embedding_network, held_images, tmp_path
        )


class _PixelsIn:
    """Stands in for Transform's output: raw examples carry the 64 pixels as floats."""

    def raw_feature_spec(self):
        return {keys.IMAGE: tf.io.FixedLenFeature([64], tf.float32)}

    def transform_features_layer(self):
        return tf.keras.layers.Lambda(
            lambda raw: {keys.IMAGE: tf.reshape(raw[keys.IMAGE], [-1, 8, 8, 1])}
        )


def assert_export_is_the_embedding_network_alone(network, images, tmp_path):
    """The SavedModel serves embeddings only and holds no proxy: just the network's weights."""
    export_dir = str(tmp_path / "serving")
    export.export_serving_model(network, _PixelsIn(), export_dir)
    saved = tf.train.list_variables(os.path.join(export_dir, "variables", "variables"))
    shapes = sorted(tuple(shape) for name, shape in saved if name != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert shapes == sorted(tuple(v.shape) for v in network.variables)
    loaded = tf.saved_model.load(export_dir)
    assert list(loaded.signatures) == [keys.SERVING_DEFAULT]
    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    keys.IMAGE: tf.train.Feature(float_list=tf.train.FloatList(value=x.ravel()))
                }
            )
        ).SerializeToString()
        for x in images[:5]
    ]
    served = loaded.signatures[keys.SERVING_DEFAULT](tf.constant(examples))
    assert list(served) == [keys.EMBEDDING]
    np.testing.assert_allclose(
        served[keys.EMBEDDING].numpy(), network(images[:5]).numpy(), atol=1e-5
    )


def test_a_projection_head_trains_but_only_the_encoder_is_served(digits, tmp_path):
    train_images, train_labels, held_images, _ = digits
    hparams = dataclasses.replace(
        DIGITS, projection_head=True, steps_per_epoch=10, mixed_precision="bfloat16"
    )
    tf.keras.utils.set_random_seed(hparams.seed)
    untrained = model.build_networks_for(hparams)[1](held_images[:20]).numpy()
    result = fit.fit(
        hparams,
        tf.data.Dataset.from_tensor_slices((train_images, train_labels)),
        None,
        np.ones(10, bool),
        len(train_labels),
    )
    network = result.embedding_network  # float32 copy of the bfloat16-trained encoder
    served = network(held_images[:20]).numpy()
    # 8x8 images: one conv block of 8 filters down to 4x4, flattened; no projection.
    assert served.shape == (20, 4 * 4 * 8) and network.compute_dtype == "float32"
    assert "projection" not in {layer.name for layer in network.layers}
    assert not np.allclose(served, untrained, atol=1e-3)  # The encoder trained.
    assert_export_is_the_embedding_network_alone(network, held_images, tmp_path)
