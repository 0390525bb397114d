"""The compiled Kubeflow spec, run step by step without a cluster (tests/kfp_driver.py).

Every task runs its container command from the spec as a subprocess, fed executor inputs shaped
as open-source KFP's driver shapes them, on a tiny digits subset. The first run pushes a model
that answers serving_default; a second run with a worse Trainer (KFP's cache reuses the steps
before it) compares against that served model and does not push.
"""

import glob
import json
import os

import kfp_driver
import numpy as np
import pytest
import tensorflow as tf
from conftest import TRAINING, UPSTREAM, write_digits_subset
from sklearn.datasets import load_digits

from components.evaluator import results
from components.evaluator.blessing import Blessing
from components.example_gen import readers
from pipeline import cli, summary

pytestmark = pytest.mark.e2e

HPARAMS = ["--image-size", "16", "--epochs", "3", "--min-training-steps", "0"]
HPARAMS += ["--identities-per-batch", "10"]
HPARAMS += ["--images-per-identity", "4", "--lower-bound", "0.2", "--report-examples", "80"]
# Gate on MAP@R: on 80 eval digits even an untrained network's Precision@1 is near 1, so only a
# ranking metric tells the worse model apart.
HPARAMS += ["--gating-metric", "map_at_r"]
# Placeholders the pods would see; the test points them at local folders.
BUCKET = "gs://siamese-bucket"


def constant(spec: dict, task: str, name: str):
    return spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"][name]["runtimeValue"]


def localised(spec: dict, data: str, serving: str) -> dict:
    """The spec with its bucket paths pointed at local folders (pods would read the bucket)."""
    constant(spec, "ExampleGen", "input_base")["constant"] = data
    constant(spec, "ServedBaseline", "serving_dir")["constant"] = serving
    push = constant(spec, "Pusher", "push_destination")
    destination = json.loads(push["constant"])
    destination["filesystem"]["base_directory"] = serving
    push["constant"] = json.dumps(destination)
    return spec


def worse_trainer(spec: dict) -> dict:
    """One step at a learning rate of 1e-12 (0 is refused): a model the change threshold must
    refuse."""
    config = constant(spec, "Trainer", "custom_config")
    hparams = json.loads(config["constant"])
    hparams.update(epochs=1, steps_per_epoch=1, learning_rate=1e-12, early_stopping_patience=0)
    config["constant"] = json.dumps(hparams)
    return spec


def metadata(run: kfp_driver.SpecRun, task: str, key: str) -> dict:
    (artifact,) = run.produced[task][key]
    return artifact["metadata"]


@pytest.fixture(scope="module")
def spec_runs(tmp_path_factory):
    import yaml

    root = str(tmp_path_factory.mktemp("kfp-local"))
    data, serving = os.path.join(root, "data"), os.path.join(root, "serving")
    os.makedirs(data)
    write_digits_subset(data, train=16, eval=8)
    output = os.path.join(root, "pipeline.yaml")
    argv = ["compile", "kubeflow", "--image", "siamese-tfx:test", "--output", output]
    argv += ["--pipeline-root", f"{BUCKET}/root", "--data", f"{BUCKET}/data"]
    argv += ["--data-format", "idx", "--serving-dir", f"{BUCKET}/serving", "--gpus", "0"]
    argv += [*HPARAMS, "--", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    assert cli.main(argv) == 0
    with open(output) as f:
        spec = localised(yaml.safe_load(f), data, serving)
    cache: dict = {}
    pipeline_root = os.path.join(root, "root")
    first = kfp_driver.SpecRun(spec, pipeline_root, "run-1", cache).run()
    versions = sorted(os.listdir(serving))
    worse = kfp_driver.SpecRun(worse_trainer(spec), pipeline_root, "run-2", cache).run()
    return spec, serving, first, versions, worse


def test_every_task_runs_its_container_and_the_model_is_blessed_and_pushed(spec_runs):
    spec, serving, first, versions, _ = spec_runs
    assert set(first.states) == set(spec["root"]["dag"]["tasks"])
    assert set(first.states.values()) == {"COMPLETE"}
    assert metadata(first, "ServedBaseline", "model")["found"] == 0  # Nothing served yet.
    assert metadata(first, "Evaluator", "blessing")["blessed"] == 1
    pushed = metadata(first, "Pusher", "pushed_model")
    assert pushed["pushed"] == 1 and len(versions) == 1
    assert pushed["pushed_destination"] == os.path.join(serving, versions[0])
    # The Trainer's model has the layout downstream steps read: Format-Serving/saved_model.pb.
    (model,) = first.produced["Trainer"]["model"]
    assert os.path.isfile(os.path.join(model["uri"], "Format-Serving", "saved_model.pb"))
    zero_byte = [
        p
        for p in glob.glob(os.path.join(model["uri"], "**"), recursive=True)
        if os.path.isfile(p) and p.endswith("/")
    ]
    assert not zero_byte


def test_pushed_model_answers_serving_default(spec_runs):
    _, serving, _, versions, _ = spec_runs
    serve = tf.saved_model.load(os.path.join(serving, versions[0])).signatures["serving_default"]
    digits = load_digits()
    examples = []
    for pixels in digits.images[:4]:
        image = tf.image.encode_png(np.round(pixels * 255 / 16).astype(np.uint8)[..., None])
        examples.append(readers.make_example(image.numpy(), "unused").SerializeToString())
    embeddings = serve(examples=tf.constant(examples))["embedding"].numpy()
    assert embeddings.shape[0] == 4
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_rerun_compares_a_worse_model_with_the_served_one_and_does_not_push(spec_runs):
    _, serving, first, versions, worse = spec_runs
    assert {task: worse.states[task] for task in UPSTREAM} == dict.fromkeys(UPSTREAM, "CACHED")
    assert {task: worse.states[task] for task in TRAINING} == dict.fromkeys(TRAINING, "COMPLETE")
    served = metadata(worse, "ServedBaseline", "model")
    assert served["found"] == 1 and served["served_version"] == versions[0]
    (evaluation,) = worse.produced["Evaluator"]["evaluation"]
    candidate, baseline = results.evaluation_metrics(evaluation["uri"])
    (good,) = first.produced["Evaluator"]["evaluation"]
    good_metrics, _ = results.evaluation_metrics(good["uri"])
    # The baseline evaluated is the served model: the first run's metrics again.
    assert baseline["map_at_r"] == pytest.approx(good_metrics["map_at_r"])
    assert candidate["map_at_r"] < baseline["map_at_r"] - 0.01
    blessing = Blessing(gating_metric="map_at_r", max_regression=0.01)
    reasons = " ".join(
        summary.blessing_reasons(
            evaluation["uri"], blessing, candidate, baseline, "served baseline"
        )
    )
    assert "fails the change threshold" in reasons and "served baseline" in reasons
    assert metadata(worse, "Evaluator", "blessing")["blessed"] == 0
    assert not metadata(worse, "Pusher", "pushed_model").get("pushed")
    assert sorted(os.listdir(serving)) == versions
