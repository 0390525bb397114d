"""Custom TFX components and model code of the siamese embedding pipeline."""

import os

# tf.keras must be Keras 2 (tf_keras) for tf.Transform and TFMA; TF reads this when tf.keras is
# first touched, so it is set before any of our modules import TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
