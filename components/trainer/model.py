"""Embedding networks and the Keras models that train them, with triplet or other losses.

Every model comes as two networks sharing their weights (`build_networks`, or
`build_networks_for` an HParams):
- the training network, whose output the triplet loss sees;
- the embedding network, which is served: an image in, an L2-normalised embedding out.
For `cnn`, `resnet` and `plain` (the benchmarks' plain reference: two convs, no batch norm)
they are the same network, ending in L2 normalisation, unless a projection head is asked for:
then the embedding network serves the L2-normalised conv encoder output below the dense layers
the loss trains through. For `mlp`, the original notebook's Dense(64, relu) -> Dense(D,
sigmoid), the loss sees the sigmoid output, as in the notebook, and only the embedding network
adds L2 normalisation on top.

A loss with state of its own is a `LossHead` the trainer holds beside the networks, never part
of the embedding network (so never exported): `ProxyHead`, the class weights of a proxy loss
(ArcFace), and `RandomDraws`, the random stream of a loss that samples (the margin loss).
"""

import tensorflow as tf

from components import keys
from components.trainer import triplet_loss
from components.trainer.hparams import MODELS, HParams

keras = tf.keras


def conv_block(x, filters: int):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    return keras.layers.MaxPooling2D()(x)


def cnn_encoder(images, image_size: int, width: int = 32, smallest: int = 4):
    """Conv blocks (conv, batch norm, ReLU, max pool) halve the image until it is at most
    `smallest` pixels wide, doubling the filters from `width` (to 256 at most), flattened. On
    28x28: 32, 64 and 128 filters at 28, 14 and 7 pixels, 3x3x128 out (on Fashion-MNIST this
    third block beat two blocks at the same training time)."""
    x, size, filters = images, image_size, width
    while True:
        x = conv_block(x, filters)
        size, filters = size // 2, min(filters * 2, 256)
        if size <= smallest:
            break
    return keras.layers.Flatten()(x)


def cnn_head(encoded):
    """A 128-unit dense layer with layer norm and ReLU above the conv encoder.

    Layer norm, not batch norm, before the embedding: batch norm there normalises each image by
    its training batch but by running averages in serving, and the triplet loss, satisfied on
    training batches, stops correcting the served geometry; on 5,000 Fashion-MNIST images layer
    norm there raised VAL@FAR=1e-3 from 0.28 to 0.34 at the same speed (benchmarks/RESULTS.md).
    """
    x = keras.layers.Dense(128, use_bias=False)(encoded)
    x = keras.layers.LayerNormalization()(x)
    return keras.layers.ReLU()(x)


def residual_block(x, filters: int, stride: int):
    """A basic ResNet block: two 3x3 convs with batch norm, projection shortcut when needed."""
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    # Zero-initialised last scale: each block starts as the identity.
    y = keras.layers.BatchNormalization(gamma_initializer="zeros")(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
        shortcut = keras.layers.BatchNormalization()(shortcut)
    return keras.layers.ReLU()(keras.layers.Add()([shortcut, y]))


def resnet_features(images, image_size: int, width: int = 32):
    """A small ResNet for larger RGB images (64x64, 96x96 faces).

    A 3x3 stem (stride 2 from 64 pixels up), then residual stages that halve the size and double
    the filters until the feature map is at most 8x8, then global average pooling.
    """
    stride = 2 if image_size >= 64 else 1
    x = keras.layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(images)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    size, filters = -(-image_size // stride), width
    x = residual_block(x, filters, 1)
    while size > 8:
        filters = min(filters * 2, 512)
        x = residual_block(x, filters, 2)
        size = -(-size // 2)
    return keras.layers.GlobalAveragePooling2D()(x)


def plain_encoder(images, width: int = 32):
    """The plain reference recipe's convs: conv 32 3x3 ReLU, conv 64 3x3 ReLU, max pool,
    flattened; no batch norm (a benchmark reference, not a tuned model). Its head is one dense
    128-unit ReLU layer."""
    x = keras.layers.Conv2D(width, 3, activation="relu")(images)
    x = keras.layers.Conv2D(2 * width, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    return keras.layers.Flatten()(x)


def build_networks(
    image_size: int,
    channels: int,
    embedding_dim: int,
    model: str = "cnn",
    width: int = 32,
    projection_head: bool = False,
) -> tuple[keras.Model, keras.Model]:
    """(training network, embedding network); see the module docstring.

    With `projection_head` the loss trains the whole network, but the embedding network serves
    the encoder's features below the dense layers, L2-normalised (SimCLR's projection head:
    features below it keep more of what tells apart classes never trained on).
    """
    images = keras.Input((image_size, image_size, channels), name=keys.IMAGE)
    if model == "mlp":
        if projection_head:
            raise ValueError("projection_head needs a model with a conv encoder, not mlp")
        # The notebook's network, exactly: flattened pixels, Dense(64, relu), Dense(D, sigmoid).
        x = keras.layers.Flatten()(images)
        x = keras.layers.Dense(64, activation="relu")(x)
        # Float32 head, so mixed precision never computes the loss inputs in half precision.
        output = keras.layers.Dense(
            embedding_dim, activation="sigmoid", dtype="float32", name="projection"
        )(x)
        training_network = keras.Model(images, output, name="mlp_training")
        embedding = keras.layers.UnitNormalization(axis=-1, dtype="float32", name=keys.EMBEDDING)(
            output
        )
        return training_network, keras.Model(images, embedding, name="mlp_embedding")
    if model == "cnn":
        encoded = cnn_encoder(images, image_size, width)
        features = cnn_head(encoded)
    elif model == "resnet":
        encoded = features = resnet_features(images, image_size, width)
    elif model == "plain":
        encoded = plain_encoder(images, width)
        features = keras.layers.Dense(128, activation="relu")(encoded)
    else:
        raise ValueError(f"unknown model {model!r}; choose from {MODELS}")
    projection = keras.layers.Dense(embedding_dim, dtype="float32", name="projection")(features)
    trained = keras.layers.UnitNormalization(
        axis=-1, dtype="float32", name="projected" if projection_head else keys.EMBEDDING
    )(projection)
    network = keras.Model(images, trained, name=f"{model}_embedding")
    if not projection_head:
        return network, network
    served = keras.layers.UnitNormalization(axis=-1, dtype="float32", name=keys.EMBEDDING)(encoded)
    return network, keras.Model(images, served, name=f"{model}_encoder_embedding")


def build_networks_for(hparams: HParams) -> tuple[keras.Model, keras.Model]:
    """`build_networks` with the image size, channels, embedding size, model, width and
    projection head of `hparams`."""
    return build_networks(
        hparams.image_size,
        hparams.channels,
        hparams.embedding_dim,
        hparams.model,
        hparams.width,
        hparams.projection_head,
    )


def build_augmentation(shift: float, flip: bool, seed: int) -> keras.Sequential:
    """Random shifts of up to `shift` of the height and width (edges repeated), and optionally
    random left-right flips. Float32 whatever the mixed-precision policy."""
    layers = []
    if shift > 0:
        layers.append(
            keras.layers.RandomTranslation(
                shift, shift, fill_mode="nearest", seed=seed, dtype="float32"
            )
        )
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 1, dtype="float32"))
    return keras.Sequential(layers, name="augmentation")


class LossHead(keras.layers.Layer):
    """A loss with state: called (labels, embeddings, training) -> (loss, active_fraction).

    Float32 whatever the mixed-precision policy, like the embeddings the losses see.
    """

    def __init__(self, loss_fn, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.loss_fn = loss_fn


class ProxyHead(LossHead):
    """The class weights [identities, D] (one proxy per label id) of a proxy loss
    `loss_fn(labels, embeddings, class_weights)`, trained with the network."""

    def __init__(self, loss_fn, identities: int, embedding_dim: int, **kwargs):
        super().__init__(loss_fn, **kwargs)
        self.proxies = self.add_weight(
            name="proxies",
            shape=(identities, embedding_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
            trainable=True,
        )

    def call(self, labels, embeddings, training=False):
        return self.loss_fn(labels, embeddings, self.proxies)


class RandomDraws(LossHead):
    """Uniform draws [B, B] in [0, 1) for a sampling loss `loss_fn(labels, embeddings,
    uniforms)`: fresh each training step from a generator seeded with `seed` (its state is
    saved with the trainer, so a resumed run draws on), the same fixed draws for evaluation."""

    def __init__(self, loss_fn, seed: int, **kwargs):
        super().__init__(loss_fn, **kwargs)
        self.seed = seed
        self.generator = tf.random.Generator.from_seed(seed)

    def call(self, labels, embeddings, training=False):
        count = tf.shape(embeddings)[0]
        shape = tf.stack([count, count])
        if training:
            uniforms = self.generator.uniform(shape, dtype=embeddings.dtype)
        else:
            uniforms = tf.random.stateless_uniform(
                shape, seed=[self.seed, 0], dtype=embeddings.dtype
            )
        return self.loss_fn(labels, embeddings, uniforms)


class _TripletTrainer(keras.Model):
    """Common training loop: loss and active-triplet tracking, replica scaling, augmentation."""

    def __init__(self, training_network, embedding_network, augmentation=None, **kwargs):
        super().__init__(**kwargs)
        self.training_network = training_network
        self.embedding_network = embedding_network
        self.augmentation = augmentation
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.active_tracker = keras.metrics.Mean(name="active_triplets")

    @property
    def metrics(self):
        return [self.loss_tracker, self.active_tracker]

    def _augment(self, images, training):
        if training and self.augmentation is not None and self.augmentation.layers:
            return self.augmentation(images, training=True)
        return images

    def compute_triplet_loss(self, data, training: bool):
        raise NotImplementedError

    # Plain tracing, no AutoGraph: nothing here branches on tensors, and AutoGraph would
    # otherwise convert all of tf_keras's layer code on the way (tens of seconds per trace).
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss, active = self.compute_triplet_loss(data, training=True)
            total = loss + tf.add_n(self.training_network.losses or [0.0])
            # Gradients are summed across replicas, so each contributes its share.
            scaled = total / replicas
        self.optimizer.minimize(scaled, self.trained_variables(), tape=tape)
        return self._track(loss, active)

    def trained_variables(self) -> list:
        """What the optimizer trains: the training network's weights."""
        return self.training_network.trainable_variables

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        return self._track(*self.compute_triplet_loss(data, training=False))

    def _track(self, loss, active):
        self.loss_tracker.update_state(loss)
        self.active_tracker.update_state(active)
        return {m.name: m.result() for m in self.metrics}


class TripletModel(_TripletTrainer):
    """Trains the shared embedding network with a loss on P x K batches: an online-mining
    triplet loss or another loss of labels and embeddings.

    `loss_fn(labels, embeddings) -> (loss, active_fraction)`, or a `LossHead`, whose own
    trainable weights (a proxy loss's class weights) train too; data are (images, labels).
    """

    def __init__(self, training_network, loss_fn, embedding_network=None, augmentation=None):
        super().__init__(training_network, embedding_network or training_network, augmentation)
        self.loss_fn = loss_fn

    def call(self, images, training=False):
        return self.embedding_network(images, training=training)

    def compute_triplet_loss(self, data, training):
        images, labels = data
        embeddings = self.training_network(self._augment(images, training), training=training)
        if isinstance(self.loss_fn, LossHead):
            return self.loss_fn(labels, tf.cast(embeddings, tf.float32), training=training)
        return self.loss_fn(labels, tf.cast(embeddings, tf.float32))

    def trained_variables(self) -> list:
        """The training network's weights, then the loss head's (if it has any)."""
        variables = super().trained_variables()
        if isinstance(self.loss_fn, LossHead):
            variables = variables + self.loss_fn.trainable_variables
        return variables


TRIPLET_INPUTS = ("anchor", "positive", "negative")


class SiameseModel(_TripletTrainer):
    """The notebook's three-branch siamese network: anchor, positive and negative each go through
    the same (weight-shared) network, and `triplet_loss.random_triplets` compares the three.

    Data are dicts {"anchor", "positive", "negative"} of image batches
    (data.random_triplet_batches).
    """

    def __init__(
        self, training_network, margin=0.2, soft=False, embedding_network=None, augmentation=None
    ):
        super().__init__(training_network, embedding_network or training_network, augmentation)
        self.margin = margin
        self.soft = soft
        shape = training_network.input_shape[1:]
        inputs = [keras.Input(shape, name=name) for name in TRIPLET_INPUTS]
        self.siamese_network = keras.Model(
            inputs, [training_network(branch) for branch in inputs], name="siamese"
        )

    def call(self, triplets, training=False):
        """{"anchor", "positive", "negative"} images -> their three embeddings."""
        return self.siamese_network([triplets[n] for n in TRIPLET_INPUTS], training=training)

    def compute_triplet_loss(self, data, training):
        triplets = [self._augment(data[name], training) for name in TRIPLET_INPUTS]
        anchor, positive, negative = (
            tf.cast(e, tf.float32) for e in self.siamese_network(triplets, training=training)
        )
        return triplet_loss.random_triplets(anchor, positive, negative, self.margin, self.soft)
