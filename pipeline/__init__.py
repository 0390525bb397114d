"""The siamese-tfx pipeline definition, runners and command line."""

import components  # noqa: F401  (selects Keras 2 for tf.keras before TensorFlow loads)
