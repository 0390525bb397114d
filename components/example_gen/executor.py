"""ExampleGen executor: reads whichever supported image dataset lies at `input_base`."""

import os

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.types import standard_component_specs

from components.example_gen import readers, sources


@beam.ptransform_fn
def ImageToExample(pipeline, exec_properties, split_pattern):  # noqa: N802 (TFX naming)
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    data_format = sources.detect_format(input_base)
    paths = sorted(tf.io.gfile.glob(os.path.join(input_base, split_pattern)))
    if not paths:
        raise sources.DatasetError(f"{input_base}: no files match {split_pattern}")
    if data_format == sources.IDX:
        images_path, labels_path = readers.idx_pair(paths, split_pattern)
        return pipeline | readers.ReadIdx(images_path, labels_path)
    if data_format == sources.FOLDER:
        images = readers.identity_images(paths)
        skipped = len(paths) - len(images)
        if skipped:
            logging.warning(
                "%s: skipped %d files that are not .png/.jpg/.jpeg", input_base, skipped
            )
        if not images:
            raise sources.DatasetError(
                f"{input_base}: no .png/.jpg/.jpeg images in identity folders"
            )
        return pipeline | readers.ReadIdentityFolders(images)
    return pipeline | readers.ReadRawTFRecords(paths)


class Executor(BaseExampleGenExecutor):
    """Streams images through Beam into tf.Examples with `image` and `label` bytes features."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802
        return ImageToExample
