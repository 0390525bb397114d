"""tf.Transform preprocessing for the image pipeline."""
