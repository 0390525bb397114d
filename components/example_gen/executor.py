"""ExampleGen executor: reads whichever supported image dataset lies at `input_base`."""

import os

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.types import standard_component_specs

from components.example_gen import readers, sources

EVAL_SPLIT = "eval"
MIN_EVAL_IDENTITIES = 2  # Retrieval and verification need 2 identities with 2+ images each.


@beam.ptransform_fn
def ImageToExample(pipeline, exec_properties, split_pattern):  # noqa: N802 (TFX naming)
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    data_format = sources.detect_format(input_base)
    with sources.utf8_names(input_base):
        paths = sorted(tf.io.gfile.glob(os.path.join(input_base, split_pattern)))
    if not paths:
        raise sources.DatasetError(f"{input_base}: no files match {split_pattern}")
    if data_format == sources.IDX:
        images_path, labels_path = readers.idx_pair(paths, split_pattern)
        return pipeline | readers.ReadIdx(images_path, labels_path)
    if data_format == sources.FOLDER:
        images = readers.identity_images(paths)
        extensions = "/".join(sources.IMAGE_EXTENSIONS)
        skipped = len(paths) - len(images)
        if skipped:
            logging.warning("%s: skipped %d files that are not %s", input_base, skipped, extensions)
        if not images:
            raise sources.DatasetError(f"{input_base}: no {extensions} images in identity folders")
        return pipeline | readers.ReadIdentityFolders(images)
    return pipeline | readers.ReadRawTFRecords(paths)


def _identity(example: tf.train.Example) -> bytes:
    return example.features.feature[sources.PARTITION_FEATURE].bytes_list.value[0]


def check_eval_identities(counts: list[tuple[bytes, int]], input_base: str) -> None:
    """Fails unless the eval split has MIN_EVAL_IDENTITIES identities with 2 or more images."""
    usable = sum(1 for _, count in counts if count >= 2)
    if usable < MIN_EVAL_IDENTITIES:
        raise sources.DatasetError(
            f"{input_base}: the eval split has {len(counts)} identities, {usable} of them with "
            f"2 or more images; retrieval and verification metrics need at least "
            f"{MIN_EVAL_IDENTITIES}. Raise --eval-fraction, add identities, or use "
            "--split-by image"
        )


@beam.ptransform_fn
def CheckEvalIdentities(examples, input_base: str):  # noqa: N802 (Beam style)
    return (
        examples
        | "Identity" >> beam.Map(_identity)
        | "PerIdentity" >> beam.combiners.Count.PerElement()
        | "All" >> beam.combiners.ToList()
        | "Check" >> beam.Map(check_eval_identities, input_base)
    )


class Executor(BaseExampleGenExecutor):
    """Streams images through Beam into tf.Examples with `image` and `label` bytes features."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802
        return ImageToExample

    def GenerateExamplesByBeam(self, pipeline, exec_properties):  # noqa: N802
        """The stock splits, plus a check that the eval split can be evaluated."""
        splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
        if EVAL_SPLIT in splits:
            input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
            _ = splits[EVAL_SPLIT] | "CheckEvalIdentities" >> CheckEvalIdentities(input_base)
        return splits
