"""Embedding networks: an image in, an L2-normalised embedding out."""

import tensorflow as tf

keras = tf.keras
MODELS = ("cnn", "mlp")


def conv_block(x, filters: int):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    return keras.layers.MaxPooling2D()(x)


def cnn_features(images, image_size: int):
    """Conv blocks halve the image until it is at most 7x7, doubling filters (32 to 256)."""
    x, size, filters = images, image_size, 32
    while True:
        x = conv_block(x, filters)
        size, filters = size // 2, min(filters * 2, 256)
        if size <= 7:
            break
    x = keras.layers.Flatten()(x)
    return keras.layers.Dense(128, activation="relu")(x)


def mlp_features(images):
    """The notebook's network body: flattened pixels through Dense(64, relu)."""
    x = keras.layers.Flatten()(images)
    return keras.layers.Dense(64, activation="relu")(x)


def build_embedding_network(
    image_size: int, channels: int, embedding_dim: int, model: str = "cnn"
) -> keras.Model:
    images = keras.Input((image_size, image_size, channels), name="image")
    if model == "cnn":
        features = cnn_features(images, image_size)
    elif model == "mlp":
        features = mlp_features(images)
    else:
        raise ValueError(f"unknown model {model!r}; choose from {MODELS}")
    # Float32 head, so mixed precision never normalises in float16.
    projection = keras.layers.Dense(embedding_dim, dtype="float32", name="projection")(features)
    embedding = keras.layers.UnitNormalization(axis=-1, dtype="float32", name="embedding")(
        projection
    )
    return keras.Model(images, embedding, name=f"{model}_embedding")


class TripletModel(keras.Model):
    """Trains the shared embedding network with an online-mining triplet loss."""

    def __init__(self, embedding_network: keras.Model, loss_fn, **kwargs):
        super().__init__(**kwargs)
        self.embedding_network = embedding_network
        self.loss_fn = loss_fn
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.active_tracker = keras.metrics.Mean(name="active_triplets")

    @property
    def metrics(self):
        return [self.loss_tracker, self.active_tracker]

    def call(self, images, training=False):
        return self.embedding_network(images, training=training)

    def train_step(self, data):
        images, labels = data
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            embeddings = self.embedding_network(images, training=True)
            loss, active = self.loss_fn(labels, embeddings)
            total = loss + tf.add_n(self.embedding_network.losses or [0.0])
            # Gradients are summed across replicas, so each contributes its share.
            scaled = total / replicas
        self.optimizer.minimize(scaled, self.embedding_network.trainable_variables, tape=tape)
        return self._track(loss, active)

    def test_step(self, data):
        images, labels = data
        loss, active = self.loss_fn(labels, self.embedding_network(images, training=False))
        return self._track(loss, active)

    def _track(self, loss, active):
        self.loss_tracker.update_state(loss)
        self.active_tracker.update_state(active)
        return {m.name: m.result() for m in self.metrics}
