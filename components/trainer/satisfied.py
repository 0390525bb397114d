"""Stops training once the loss is satisfied, and re-estimates batch-norm statistics.

The loss is satisfied when every triplet (or mined pair, for the pair losses) of every training
batch in an epoch meets the margin (active share 0): no gradient flows, so more epochs leave the
weights where they are and only move batch norm's running averages. Small, easy data gets there
early (digits after 6 or 7 of 12 epochs, a Yale fold after 2 to 4), and the rest of the step
budget would be spent for nothing.
Stopping sooner leaves those running averages less settled, so `recalibrate_batch_norm`
re-estimates them from training batches before the network is exported.
"""

import tensorflow as tf

keras = tf.keras

# Batches, and the running-average momentum, of the re-estimate: 0.9^50 leaves 0.5% of the
# statistics from before it.
RECALIBRATION_BATCHES = 50
RECALIBRATION_MOMENTUM = 0.9


class StopWhenSatisfied(keras.callbacks.Callback):
    """Ends training after the first epoch with no active term; `satisfied_epoch` (1-based)
    says which, 0 when it never happened."""

    def __init__(self, loss: str = "triplet", terms: str = "triplets"):
        super().__init__()
        self.satisfied_epoch = 0
        self.loss, self.terms = loss, terms  # named in the message

    def on_epoch_end(self, epoch, logs=None):
        if (logs or {}).get("active_triplets", 1.0) <= 0.0:
            self.satisfied_epoch = epoch + 1
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.satisfied_epoch:
            print(
                f"stopped after epoch {self.satisfied_epoch}: the {self.loss} loss was 0 on "
                f"every training batch (no active {self.terms}: more epochs would not change "
                "the weights)",
                flush=True,
            )


def recalibrate_batch_norm(
    network: keras.Model, image_batches: tf.data.Dataset, count: int = RECALIBRATION_BATCHES
) -> int:
    """Runs `count` batches of training images through `network` in training mode, without
    gradients, so each batch-norm layer's running mean and variance follow the trained weights;
    returns the number of batch-norm layers (0: nothing to do)."""
    layers = [
        layer for layer in network.submodules if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = RECALIBRATION_MOMENTUM
    try:
        forward = tf.function(lambda images: network(images, training=True), autograph=False)
        for images in image_batches.take(count):
            forward(images)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    return len(layers)
