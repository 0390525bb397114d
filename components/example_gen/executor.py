"""ExampleGen executor: reads whichever supported image dataset lies at `input_base`.

Splits by the output config's hash buckets, as the stock executor does, except by identity:
then the identities sent to eval follow identity_split.plan, which holds out at least two
evaluable identities on small folders too (or falls back to a split by image). The split made
is recorded on the Examples artifact (`split_by`, `split_note`) for the run summary.
"""

import collections
import copy
import os

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.example_gen import identity_split, readers, sources

EVAL_SPLIT = "eval"
MIN_EVAL_IDENTITIES = identity_split.MIN_EVAL_IDENTITIES
SPLIT_BY_PROPERTY = identity_split.SPLIT_BY_PROPERTY
SPLIT_NOTE_PROPERTY = identity_split.SPLIT_NOTE_PROPERTY


def split_paths(input_base: str, split_pattern: str) -> list[str]:
    with sources.utf8_names(input_base):
        paths = sorted(tf.io.gfile.glob(os.path.join(input_base, split_pattern)))
    if not paths:
        raise sources.DatasetError(f"{input_base}: no files match {split_pattern}")
    return paths


@beam.ptransform_fn
def ImageToExample(pipeline, exec_properties, split_pattern):  # noqa: N802 (TFX naming)
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    data_format = sources.detect_format(input_base)
    paths = split_paths(input_base, split_pattern)
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


def identity_counts(input_base: str, split_pattern: str) -> dict[bytes, int]:
    """Images per identity: from the listing for identity folders, a pass over the labels for
    TFRecords."""
    paths = split_paths(input_base, split_pattern)
    if sources.detect_format(input_base) == sources.FOLDER:
        names = (os.path.basename(os.path.dirname(p)) for p in readers.identity_images(paths))
        return dict(collections.Counter(name.encode() for name in names))
    counts = collections.Counter()
    for path in paths:
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path, compression):
            example = readers.check_raw_record((path, record.numpy()))
            counts[_identity(example)] += 1
    return dict(counts)


def _by_plan(example: tf.train.Example, partitions: int, split: identity_split.IdentitySplit):
    return 1 if split.is_eval(_identity(example)) else 0  # [train, eval]


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

    _split: identity_split.IdentitySplit | None = None

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802
        return ImageToExample

    def GenerateExamplesByBeam(self, pipeline, exec_properties):  # noqa: N802
        """The splits (by identity: identity_split.plan), plus a check that the eval split can
        be evaluated."""
        output_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output()
        )
        if output_config.split_config.partition_feature_name:
            splits = self._split_by_identity(pipeline, exec_properties, output_config)
        else:
            splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
        if EVAL_SPLIT in splits:
            input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
            _ = splits[EVAL_SPLIT] | "CheckEvalIdentities" >> CheckEvalIdentities(input_base)
        return splits

    def _split_by_identity(self, pipeline, exec_properties, output_config) -> dict:
        input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        input_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input()
        )
        pattern = input_config.splits[0].pattern
        config = output_config.split_config
        names = [split.name for split in config.splits]
        if names != ["train", EVAL_SPLIT]:
            raise ValueError(f"a split by identity makes train and eval, not {names}")
        buckets = [split.hash_buckets for split in config.splits]
        total = sum(buckets)
        self._split = identity_split.plan(identity_counts(input_base, pattern), buckets[1], total)
        if self._split.note:
            logging.warning("ExampleGen: %s", self._split.note)
        examples = pipeline | "InputToRecord" >> ImageToExample(exec_properties, pattern)
        if self._split.by == sources.SPLIT_BY_IDENTITY:
            parts = examples | "SplitByIdentity" >> beam.Partition(_by_plan, 2, self._split)
        else:  # Too few identities to hold any out: each example hashed, as by image.
            by_image = copy.deepcopy(config)
            by_image.ClearField("partition_feature_name")
            cumulative = [buckets[0], total]
            parts = examples | "SplitByImage" >> beam.Partition(
                base_example_gen_executor._PartitionFn, 2, cumulative, by_image
            )
        return dict(zip(names, parts, strict=True))

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX API)
        self._split = None
        super().Do(input_dict, output_dict, exec_properties)
        if self._split is not None:
            examples = artifact_utils.get_single_instance(
                output_dict[standard_component_specs.EXAMPLES_KEY]
            )
            examples.set_string_custom_property(SPLIT_BY_PROPERTY, self._split.by)
            examples.set_string_custom_property(SPLIT_NOTE_PROPERTY, self._split.note)
