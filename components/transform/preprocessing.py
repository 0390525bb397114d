"""preprocessing_fn: decodes images, resizes, normalises, and maps identity names to ids.

The same graph runs inside the served model, so a client sends only encoded image bytes.
"""

import tensorflow as tf
import tensorflow_transform as tft

from components.keys import IMAGE, LABEL

# The transformed features keep the raw names: IMAGE (float32 pixels) and LABEL (an id).
LABEL_VOCABULARY = "label"
LABEL_COUNTS = "label_counts"
DEFAULT_IMAGE_SIZE = 28
DEFAULT_CHANNELS = 1


def _flat_strings(feature) -> tf.Tensor:
    """One string per example, whether the schema made the feature dense, sparse or ragged."""
    if isinstance(feature, tf.SparseTensor):
        feature = tf.sparse.to_dense(feature, default_value="")
    elif isinstance(feature, tf.RaggedTensor):
        feature = feature.to_tensor(default_value="")
    if feature.shape.rank == 2:
        feature = feature[:, 0]
    return tf.reshape(feature, [-1])


def _decode_grey(image_bytes: tf.Tensor) -> tf.Tensor:
    """One image as uint8 grey [H, W, 1]. TensorFlow's GIF and BMP decoders give colour only,
    so those (which a client may send the served model; ExampleGen stores them as PNG) are
    decoded in RGB and converted; PNG and JPEG are decoded grey directly."""
    colour_only = tf.logical_or(
        tf.equal(tf.strings.substr(image_bytes, 0, 4), b"GIF8"),
        tf.equal(tf.strings.substr(image_bytes, 0, 2), b"BM"),
    )
    return tf.cond(
        colour_only,
        lambda: tf.image.rgb_to_grayscale(
            tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        ),
        lambda: tf.io.decode_image(image_bytes, channels=1, expand_animations=False),
    )


def decode_images(encoded: tf.Tensor, size: int, channels: int) -> tf.Tensor:
    """PNG/JPEG (and GIF/BMP) bytes of any size and colour -> float32 [batch, size, size,
    channels] in [0, 1]."""

    def decode_one(image_bytes):
        if channels == 1:
            image = _decode_grey(image_bytes)
        else:
            image = tf.io.decode_image(image_bytes, channels=channels, expand_animations=False)
        image = tf.image.convert_image_dtype(image, tf.float32)
        image = tf.image.resize(image, [size, size], antialias=True)
        return tf.clip_by_value(image, 0.0, 1.0)

    return tf.map_fn(
        decode_one,
        encoded,
        fn_output_signature=tf.TensorSpec([size, size, channels], tf.float32),
    )


def preprocessing_fn(inputs, custom_config=None):
    """Images scaled to [0, 1] then standardised with train-split pixel statistics."""
    config = custom_config or {}
    size = int(config.get("image_size", DEFAULT_IMAGE_SIZE))
    channels = int(config.get("channels", DEFAULT_CHANNELS))

    images = decode_images(_flat_strings(inputs[IMAGE]), size, channels)
    pixel_mean = tft.mean(images)
    pixel_std = tf.sqrt(tft.var(images))
    outputs = {IMAGE: (images - pixel_mean) / tf.maximum(pixel_std, 1e-6)}

    if LABEL in inputs:
        identities = _flat_strings(inputs[LABEL])
        # Images per identity, so the Trainer can leave out identities with one image.
        tft.vocabulary(identities, vocab_filename=LABEL_COUNTS, store_frequency=True)
        outputs[LABEL] = tft.compute_and_apply_vocabulary(
            identities, vocab_filename=LABEL_VOCABULARY, default_value=-1
        )
    return outputs
