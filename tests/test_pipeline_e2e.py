"""The real pipeline, end to end, on a small folder-per-identity dataset.

Runs every component locally (Beam DirectRunner, SQLite ML Metadata), serves the pushed model,
re-runs to check that the cache is hit, then trains a deliberately worse model (one step) that
the baseline comparison must refuse, and writes the HTML report.
"""

import glob
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.example_gen import readers
from pipeline import cli

pytestmark = pytest.mark.e2e

UPSTREAM = {
    "ExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "ExampleValidator",
    "AnomalyGate",
    "Transform",
}
COMPONENTS = UPSTREAM | {
    "Trainer",
    "EmbeddingReport",
    "ServedModel",
    "Evaluator",
    "Pusher",
}
ARGS = [
    "--image-size",
    "16",
    "--epochs",
    "3",
    "--identities-per-batch",
    "10",
    "--images-per-identity",
    "4",
    "--lower-bound",
    "0.3",
    "--eval-fraction",
    "0.3",
]


@pytest.fixture(scope="module")
def runs(identity_folders, tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("run"))
    argv = ["run", "--data", str(identity_folders), "--output-dir", output_dir, *ARGS]
    first_code = cli.main(argv)
    with open(os.path.join(output_dir, "summary.json")) as f:
        first = json.load(f)
    second_code = cli.main(argv)
    with open(os.path.join(output_dir, "summary.json")) as f:
        second = json.load(f)
    versions = sorted(os.listdir(os.path.join(output_dir, "serving_model")))
    worse_code = cli.main(
        [*argv, "--epochs", "1", "--steps-per-epoch", "1", "--learning-rate", "0"]
    )
    with open(os.path.join(output_dir, "summary.json")) as f:
        worse = json.load(f)
    worse["versions_before"] = versions
    return output_dir, (first_code, first), (second_code, second), (worse_code, worse)


def test_every_component_ran_and_the_model_was_blessed_and_pushed(runs):
    output_dir, (code, summary), *_ = runs
    assert code == 0
    assert summary["components"] == dict.fromkeys(COMPONENTS, "COMPLETE")
    assert summary["blessed"] is True
    assert summary["metrics"]["precision_at_1"] >= 0.3
    pushed = summary["pushed_model_dir"]
    assert pushed.startswith(os.path.join(output_dir, "serving_model"))
    assert os.path.isfile(os.path.join(pushed, "saved_model.pb"))
    dataset = summary["dataset"]
    assert dataset["identities"] == 10
    assert sum(dataset["examples"].values()) == 300


def serialized(path):
    with open(path, "rb") as f:
        return readers.make_example(f.read(), "unused").SerializeToString()


def test_pushed_model_serves_unit_norm_embeddings_that_group_identities(runs, identity_folders):
    _, (_, summary), *_ = runs
    model = tf.saved_model.load(summary["pushed_model_dir"])
    serve = model.signatures["serving_default"]
    paths = sorted(glob.glob(str(identity_folders / "*" / "*")))
    labels = np.array([os.path.basename(os.path.dirname(p)) for p in paths])
    embeddings = serve(examples=tf.constant([serialized(p) for p in paths]))["embedding"].numpy()
    assert embeddings.shape == (300, 64) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=-1)
    same = labels[:, None] == labels[None]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    assert distances[same & off_diagonal].mean() < 0.7 * distances[~same].mean()


def test_serving_accepts_any_size_and_colour(runs):
    _, (_, summary), *_ = runs
    serve = tf.saved_model.load(summary["pushed_model_dir"]).signatures["serving_default"]
    examples = []
    for size, mode, image_format in [((64, 48), "RGB", "JPEG"), ((5, 7), "L", "PNG")]:
        buffer = io.BytesIO()
        Image.new(mode, size, color=128 if mode == "L" else (10, 200, 30)).save(
            buffer, image_format
        )
        examples.append(readers.make_example(buffer.getvalue(), "x").SerializeToString())
    embeddings = serve(examples=tf.constant(examples))["embedding"].numpy()
    assert embeddings.shape == (2, 64)


def test_second_run_hits_the_cache(runs):
    _, (_, first), (code, second), _ = runs
    assert code == 0
    assert second["run_id"] != first["run_id"]
    cached = UPSTREAM | {"Trainer", "EmbeddingReport"}
    assert {c: second["components"][c] for c in cached} == dict.fromkeys(cached, "CACHED")
    # Same model: the Evaluator re-checks it against itself, the model served now.
    assert second["metrics"] == pytest.approx(first["metrics"], nan_ok=True)
    assert second["baseline_metrics"]["precision_at_1"] == pytest.approx(
        first["metrics"]["precision_at_1"]
    )


def test_a_worse_model_is_not_blessed_nor_pushed_and_the_report_says_why(runs):
    output_dir, (_, good), _, (code, worse) = runs
    assert code == 2
    assert worse["blessed"] is False and worse["pushed_model_dir"] is None
    assert worse["components"]["Trainer"] == "COMPLETE"
    assert worse["metrics"]["precision_at_1"] < good["metrics"]["precision_at_1"] - 0.01
    reasons = " ".join(worse["blessing_reasons"])
    assert "fails the change threshold" in reasons and "served baseline" in reasons
    assert sorted(os.listdir(os.path.join(output_dir, "serving_model"))) == worse["versions_before"]

    assert cli.main(["report", "--output-dir", output_dir]) == 0
    with open(os.path.join(output_dir, "report.html")) as f:
        page = f.read()
    assert "Not blessed, not pushed" in page and "fails the change threshold" in page
    figures = glob.glob(os.path.join(worse["artifacts"]["embedding_report"], "*.png"))
    figures += glob.glob(os.path.join(worse["artifacts"]["model_run"], "figures", "*.png"))
    names = {os.path.basename(p) for p in figures}
    assert {
        "roc_curve.png",
        "pair_distances.png",
        "projection.png",
        "worst_identities.png",
        "triplet_samples.png",
        "epoch_01.png",
    } <= names
    for path in figures:
        assert os.path.getsize(path) > 1000
    assert page.count("data:image/png;base64,") >= len(names)
    projector_dir = os.path.join(worse["artifacts"]["embedding_report"], "projector")
    assert {"vectors.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt"} <= set(
        os.listdir(projector_dir)
    )
