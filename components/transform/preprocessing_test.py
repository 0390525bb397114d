"""preprocessing_fn run through tf.Transform's Beam implementation, then served from its graph."""

import functools
import io

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.testing.util import assert_that
from PIL import Image
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from components.transform import preprocessing


def encode(pixels, image_format="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def raw_instances():
    rng = np.random.default_rng(0)
    return [
        {"image": encode(rng.integers(0, 256, (28, 28), dtype=np.uint8)), "label": b"cat"},
        {
            "image": encode(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), "JPEG"),
            "label": b"cat",
        },
        {"image": encode(np.full((8, 8), 255, np.uint8)), "label": b"cat"},
        {"image": encode(np.zeros((50, 50, 3), np.uint8)), "label": b"dog"},
    ]


RAW_SPEC = {
    "image": tf.io.FixedLenFeature([1], tf.string),
    "label": tf.io.FixedLenFeature([1], tf.string),
}


def check_outputs(rows, size, channels):
    images = np.stack([row["image"] for row in rows])
    assert images.shape == (4, size, size, channels)
    # Standardised with statistics of these same images: mean 0, standard deviation 1.
    np.testing.assert_allclose(images.mean(), 0.0, atol=1e-4)
    np.testing.assert_allclose(images.std(), 1.0, atol=1e-3)
    labels = sorted(int(row["label"]) for row in rows)
    assert labels == [0, 0, 0, 1]  # "cat" is the most frequent identity, so it gets id 0.


def analyze_and_transform(tmp_path, size, channels):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    fn = functools.partial(
        preprocessing.preprocessing_fn,
        custom_config={"image_size": size, "channels": channels},
    )
    output_dir = str(tmp_path / "transform_output")
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(tmp_path / "tmp")):
        raw = pipeline | beam.Create([{k: [v] for k, v in r.items()} for r in raw_instances()])
        (transformed, _), transform_fn = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
        assert_that(transformed, functools.partial(check_outputs, size=size, channels=channels))
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return tft.TFTransformOutput(output_dir)


def test_grey_images_through_beam_and_serving_graph(tmp_path):
    output = analyze_and_transform(tmp_path, size=28, channels=1)
    counts = {}
    with tf.io.gfile.GFile(output.vocabulary_file_by_name(preprocessing.LABEL_COUNTS)) as f:
        for line in f:
            count, identity = line.split()
            counts[identity] = int(count)
    assert counts == {"cat": 3, "dog": 1}

    # At serving time only the image arrives; the layer must still produce the same pixels.
    layer = output.transform_features_layer()
    served = layer({"image": tf.constant([[raw_instances()[2]["image"]]])})
    assert set(served) == {"image"}
    assert served["image"].shape == (1, 28, 28, 1)
    # A white image sits above the mean of this small dataset.
    assert float(tf.reduce_min(served["image"])) > 0.0


def test_rgb_output_from_grey_and_colour_inputs(tmp_path):
    analyze_and_transform(tmp_path, size=16, channels=3)


def test_a_grey_model_decodes_gif_and_bmp_as_the_png_of_the_same_pixels():
    """TensorFlow's GIF and BMP decoders give colour only; a grey model (the default) still
    takes them, as clients may send them to the served model."""
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    colour = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    size = 12

    def decoded(data):
        return preprocessing.decode_images(tf.constant([data]), size, 1).numpy()[0]

    png = decoded(encode(grey))
    for image_format in ("GIF", "BMP"):
        np.testing.assert_array_equal(decoded(encode(grey, image_format)), png)
    # A colour image: the same grey as PIL's (ITU-R 601-2 luma), within one level.
    luma = np.asarray(Image.fromarray(colour).convert("L"))
    np.testing.assert_allclose(
        decoded(encode(colour, "BMP")), decoded(encode(luma)), atol=1.5 / 255
    )
