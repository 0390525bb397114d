"""The real ExampleGen executor: split by identity (open set) or by image, and its eval check."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components.example_gen import executor, readers, sources
from components.example_gen.split_modes import Split
from components.settings import SettingError


def write_identity_folders(root, per_identity: int, identities: int):
    """ROOT/person-<i>/<n>.png, each image a different random grey square."""
    rng = np.random.default_rng(0)
    for i in range(identities):
        folder = root / f"person-{i}"
        folder.mkdir(parents=True)
        for n in range(per_identity):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{n}.png")
    return root


def run_example_gen(data_dir: str, output_dir: str, eval_fraction: float, split_by: str):
    """Runs Executor.Do as the component would; returns split -> list of identity names."""
    return run_example_gen_artifact(data_dir, output_dir, eval_fraction, split_by)[0]


def run_example_gen_artifact(data_dir, output_dir, eval_fraction: float, split_by: str):
    """(split -> identity names, the Examples artifact) of Executor.Do."""
    examples = standard_artifacts.Examples()
    examples.uri = output_dir
    data_format = sources.detect_format(data_dir)
    exec_properties = {
        standard_component_specs.INPUT_BASE_KEY: data_dir,
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(
            sources.input_config(data_format)
        ),
        standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(
            sources.output_config(
                sources.Dataset(data_dir, data_format, Split(eval_fraction, split_by))
            )
        ),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
    }
    executor.Executor().Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    labels = {}
    for split in ("train", "eval"):
        files = glob.glob(os.path.join(output_dir, f"Split-{split}", "*"))
        records = tf.data.TFRecordDataset(files, compression_type="GZIP")
        labels[split] = [
            tf.train.Example.FromString(r.numpy()).features.feature["label"].bytes_list.value[0]
            for r in records
        ]
    return labels, examples


@pytest.mark.parametrize("identities", [4, 5, 6])
def test_a_small_folder_of_four_or_more_people_holds_out_two_by_identity(tmp_path, identities):
    data = write_identity_folders(tmp_path / "data", per_identity=12, identities=identities)
    labels, artifact = run_example_gen_artifact(str(data), str(tmp_path / "out"), 0.2, "")
    assert len(set(labels["eval"])) >= 2 and len(set(labels["train"])) >= 2
    assert not set(labels["eval"]) & set(labels["train"])
    assert artifact.get_string_custom_property(executor.SPLIT_BY_PROPERTY) == "identity"


def test_three_people_fall_back_to_a_split_by_image_and_say_so(tmp_path):
    data = write_identity_folders(tmp_path / "data", per_identity=12, identities=3)
    labels, artifact = run_example_gen_artifact(str(data), str(tmp_path / "out"), 0.3, "")
    assert set(labels["eval"]) & set(labels["train"])  # Closed set: new images of each.
    assert len(labels["eval"]) + len(labels["train"]) == 36
    assert artifact.get_string_custom_property(executor.SPLIT_BY_PROPERTY) == "image"
    note = artifact.get_string_custom_property(executor.SPLIT_NOTE_PROPERTY)
    assert note.startswith("split by image, not by identity: 3 identities")


def test_identity_split_keeps_eval_identities_out_of_train(tmp_path):
    data = write_identity_folders(tmp_path / "data", per_identity=6, identities=10)
    assert sources.default_split_by(sources.detect_format(str(data))) == sources.SPLIT_BY_IDENTITY
    labels = run_example_gen(str(data), str(tmp_path / "by_identity"), 0.35, "")
    assert len(labels["train"]) + len(labels["eval"]) == 60
    assert set(labels["eval"]) and not set(labels["eval"]) & set(labels["train"])
    assert len(labels["eval"]) == 6 * len(set(labels["eval"]))  # Every image of each.
    by_image = run_example_gen(str(data), str(tmp_path / "by_image"), 0.35, "image")
    assert set(by_image["eval"]) & set(by_image["train"])  # Closed set: identities shared.


def test_tfrecords_split_by_image_by_default_and_by_identity_on_request(tmp_path):
    data = tmp_path / "records"
    data.mkdir()
    rng = np.random.default_rng(1)
    with tf.io.TFRecordWriter(str(data / "faces.tfrecord")) as writer:
        for i in range(10):
            for _ in range(6):
                pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
                example = readers.make_example(readers.encode_png(pixels), f"person-{i}")
                writer.write(example.SerializeToString())
    assert sources.default_split_by(sources.detect_format(str(data))) == sources.SPLIT_BY_IMAGE
    by_identity = run_example_gen(str(data), str(tmp_path / "by_identity"), 0.35, "identity")
    assert set(by_identity["eval"]) and not set(by_identity["eval"]) & set(by_identity["train"])
    by_image = run_example_gen(str(data), str(tmp_path / "by_image"), 0.35, "")
    assert set(by_image["eval"]) & set(by_image["train"])


def test_an_eval_split_too_small_to_evaluate_stops_example_gen(tmp_path):
    data = write_identity_folders(tmp_path / "data", per_identity=4, identities=3)
    with pytest.raises(Exception, match="eval split has .* identities, [01] of them"):
        run_example_gen(str(data), str(tmp_path / "out"), 0.05, "identity")


def test_idx_data_keeps_its_files_as_splits():
    with pytest.raises(SettingError, match="IDX.*keeps its train/t10k files"):
        sources.Dataset("/data", sources.IDX, Split(0.2, "identity"))
    assert sources.output_config(sources.Dataset("/data", sources.IDX)) == example_gen_pb2.Output()
    with pytest.raises(SettingError, match="choose from image, identity"):
        Split(0.2, "person")
    with pytest.raises(SettingError, match="> 0 and < 1"):
        Split(1.0)
