"""Every embedding network builds and serves unit-norm embeddings of the right shape."""

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import fit, model
from components.trainer.hparams import HParams


@pytest.mark.parametrize(
    "name,size,channels",
    [
        ("cnn", 28, 1),
        ("mlp", 28, 1),
        ("resnet", 64, 3),
        ("resnet", 96, 3),
        ("cnn", 96, 3),
        ("plain", 28, 1),
    ],
)
def test_served_embeddings_are_unit_norm_with_the_right_shape(name, size, channels):
    _, network = model.build_networks(size, channels, 16, name, width=8)
    images = np.random.default_rng(0).normal(size=(3, size, size, channels)).astype(np.float32)
    embeddings = network(images, training=False).numpy()
    assert embeddings.shape == (3, 16) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_mlp_is_the_notebooks_network_trained_on_its_sigmoid_output():
    training, served = model.build_networks(28, 1, 64, "mlp")
    dense = [layer for layer in training.layers if isinstance(layer, tf.keras.layers.Dense)]
    assert [(d.units, d.activation.__name__) for d in dense] == [(64, "relu"), (64, "sigmoid")]
    assert training.count_params() == 784 * 64 + 64 + 64 * 64 + 64
    images = np.random.default_rng(1).normal(size=(4, 28, 28, 1)).astype(np.float32)
    raw = training(images).numpy()
    assert np.all((raw > 0) & (raw < 1))
    np.testing.assert_allclose(
        served(images).numpy(), raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5
    )


def test_cnn_has_batch_norm_in_its_conv_blocks_and_layer_norm_before_the_embedding():
    _, network = model.build_networks(28, 1, 64, "cnn")
    kinds = [type(layer).__name__ for layer in network.layers]
    assert kinds.count("Conv2D") == kinds.count("BatchNormalization") == 3
    # Dense 128 -> layer norm -> ReLU -> projection: the head normalises each image by itself.
    assert kinds[-6:] == [
        "Flatten",
        "Dense",
        "LayerNormalization",
        "ReLU",
        "Dense",
        "UnitNormalization",
    ]


def test_plain_is_the_benchmarks_reference_network():
    _, network = model.build_networks(28, 1, 64, "plain")
    assert not any(
        isinstance(layer, tf.keras.layers.BatchNormalization) for layer in network.layers
    )
    convs = [layer for layer in network.layers if isinstance(layer, tf.keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size) for c in convs] == [(32, (3, 3)), (64, (3, 3))]
    # conv 32, conv 64 (28 -> 24 pixels), pool to 12x12x64, dense 128, dense 64.
    assert network.count_params() == 320 + 18496 + (12 * 12 * 64 * 128 + 128) + (128 * 64 + 64)


def test_siamese_model_has_three_branches_sharing_one_network():
    training, served = model.build_networks(8, 1, 4, "mlp")
    siamese = model.SiameseModel(training, margin=0.2, embedding_network=served)
    assert [i.name for i in siamese.siamese_network.inputs] == list(model.TRIPLET_INPUTS)
    assert len(siamese.siamese_network.trainable_weights) == len(training.trainable_weights)
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 1)).astype(np.float32)
    anchor, positive, negative = siamese({"anchor": x, "positive": x, "negative": x[::-1]})
    np.testing.assert_allclose(anchor.numpy(), positive.numpy())


def test_float32_copy_of_a_mixed_precision_network_gives_the_same_embeddings():
    hparams = HParams(image_size=16, width=8, embedding_dim=8)
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        _, network = model.build_networks(16, 1, 8, "cnn", width=8)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    copy = fit.float32_copy(network, hparams, "mixed_bfloat16")
    assert copy.layers[1].compute_dtype == "float32"
    images = np.random.default_rng(3).normal(size=(5, 16, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(copy(images).numpy(), network(images).numpy(), atol=0.05)


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="unknown model"):
        model.build_networks(28, 1, 8, "vgg")


def test_loss_heads_hold_their_state_beside_the_served_network():
    seen = []

    def sampling_loss(labels, embeddings, uniforms):
        seen.append(uniforms.numpy())
        return tf.reduce_sum(embeddings) * 0.0, tf.constant(0.0)

    draws = model.RandomDraws(sampling_loss, seed=3)
    labels, embeddings = tf.constant([0, 0, 1, 1]), tf.ones([4, 2])
    for training in (True, True, False, False):
        draws(labels, embeddings, training=training)
    assert seen[0].shape == (4, 4) and np.all((seen[0] >= 0) & (seen[0] < 1))
    assert not np.array_equal(seen[0], seen[1])  # Fresh draws each training step,
    np.testing.assert_array_equal(seen[2], seen[3])  # the same ones for every evaluation.
    assert not draws.trainable_variables

    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        head = model.ProxyHead(lambda labels, embeddings, proxies: proxies, 5, 8)
        _, network = model.build_networks(8, 1, 8, "cnn", width=4)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    assert head.compute_dtype == "float32" and head.proxies.dtype == tf.float32
    assert [v.shape for v in head.trainable_variables] == [(5, 8)]
    trainer = model.TripletModel(network, head)
    assert trainer.trained_variables()[-1] is head.proxies
    assert not any(v is head.proxies for v in trainer.embedding_network.variables)


@pytest.mark.parametrize(
    "name,size,served_size", [("cnn", 28, 3 * 3 * 32), ("plain", 28, 12 * 12 * 16)]
)
def test_a_projection_head_trains_above_the_encoder_whose_features_are_served(
    name, size, served_size
):
    training, served = model.build_networks(size, 1, 16, name, width=8, projection_head=True)
    images = np.random.default_rng(4).normal(size=(3, size, size, 1)).astype(np.float32)
    assert training(images).shape == (3, 16)
    embeddings = served(images, training=False).numpy()
    assert embeddings.shape == (3, served_size) and served.output_names == ["embedding"]
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # One set of encoder weights: the served network is the training network's lower part.
    trained = {id(w) for w in training.weights}
    assert {id(w) for w in served.weights} < trained
    encoded = tf.keras.Model(training.input, served.get_layer(index=-2).output)(images).numpy()
    np.testing.assert_allclose(
        embeddings, encoded / np.linalg.norm(encoded, axis=1, keepdims=True), rtol=1e-5
    )
    with pytest.raises(ValueError, match="projection_head"):
        model.build_networks(size, 1, 16, "mlp", projection_head=True)
