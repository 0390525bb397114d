"""The real pipeline, end to end, on a small folder-per-identity dataset.

Runs every component locally (Beam DirectRunner, SQLite ML Metadata) with the console it
prints captured, serves the pushed model, re-runs to check that the cache is hit, then trains
an untrained-in-effect model (one step at a learning rate of 1e-12) that the floor (raw pixels)
and the baseline comparison must refuse, and writes the HTML report.
"""

import contextlib
import glob
import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from conftest import COMPONENTS, UPSTREAM
from PIL import Image

from benchmarks import tf_serving_loader
from components import example_io
from components.baseline import served_baseline
from components.evaluator import embedding_metrics as em
from components.example_gen import images, readers
from components.serving import component as serving_component
from components.serving import export, gallery_changes, gallery_ledger, image_guard_test
from components.serving.settings import ServingSettings
from pipeline import cli, report

pytestmark = pytest.mark.e2e

ARGS = [
    "--image-size",
    "16",
    "--epochs",
    "3",
    "--min-training-steps",  # one pass an epoch: the plumbing is under test, not the recipe
    "0",
    "--validation-min-train-images",  # a validation slice even on these few digits
    "0",
    "--identities-per-batch",
    "10",
    "--images-per-identity",
    "4",
    "--lower-bound",
    "0.3",
    "--eval-fraction",
    "0.3",
]
# The baseline runs below split by image: a worse model must score worse on eval identities it
# saw in training. (On 3 unseen digits, an untrained network can match a trained one.)
CLOSED_SET = [*ARGS, "--split-by", "image"]


@pytest.fixture(scope="module")
def runs(identity_folders, tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("run"))
    argv = ["run", "--data", str(identity_folders), "--output-dir", output_dir, *CLOSED_SET]
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        first_code = cli.main(argv)
    with open(os.path.join(output_dir, "summary.json")) as f:
        first = json.load(f)
    first["console"] = console.getvalue()
    second_code = cli.main(argv)
    with open(os.path.join(output_dir, "summary.json")) as f:
        second = json.load(f)
    versions = sorted(os.listdir(os.path.join(output_dir, "serving_model")))
    worse_code = cli.main(
        [*argv, "--epochs", "1", "--steps-per-epoch", "1", "--learning-rate", "1e-12"]
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
    assert summary["eval_split"]["open_set"] is False
    selection = summary["training"]["model_selection"]
    assert 1 <= selection["kept_epoch"] <= selection["epochs_run"] <= 3


@pytest.fixture(scope="module")
def open_set_run(identity_folders, tmp_path_factory):
    """One run with the identity folders' default split, by identity, on a small folder: four
    people, the fewest that hold two out for evaluation."""
    output_dir = str(tmp_path_factory.mktemp("open_set"))
    four = tmp_path_factory.mktemp("four_people")
    for folder in sorted(identity_folders.glob("digit-*"))[:4]:
        os.symlink(folder, four / folder.name)
    argv = ["run", "--data", str(four), "--output-dir", output_dir, *ARGS]
    code = cli.main([*argv, "--epochs", "2", "--validation-fraction", "0.3"])
    with open(os.path.join(output_dir, "summary.json")) as f:
        return code, json.load(f)


def test_identity_split_evaluates_identities_never_seen_in_training(open_set_run):
    code, summary = open_set_run
    assert code in (0, 2)  # Judged either way; how well 2 epochs generalise is not the point.
    # The schema and the anomaly gate let the eval identities, unseen in train, through.
    assert summary["components"] == dict.fromkeys(COMPONENTS, "COMPLETE")
    assert summary["eval_split"]["open_set"] is True
    per_split = summary["dataset"]["identities_per_split"]
    assert per_split["train"] + per_split["eval"] == summary["dataset"]["identities"] == 4
    assert per_split["eval"] == per_split["train"] == 2
    assert 0.0 < summary["metrics"]["map_at_r"] <= 1.0
    training = summary["training"]
    assert training["validation_slice"]["by"] == "image"  # 2 identities: too few to hold out.
    assert 1 <= training["model_selection"]["kept_epoch"] <= 2


def test_the_console_shows_progress_and_the_log_holds_the_libraries(runs):
    output_dir, (_, summary), *_ = runs
    lines = summary["console"].splitlines()
    assert len(lines) <= 30, summary["console"]
    for component in COMPONENTS:  # A start line, completed or followed by an end line.
        started = [line for line in lines if line.startswith(f"{component} started ...")]
        ended = [line for line in lines if line.startswith(f"{component} done in ")]
        ended += [line for line in started if " done in " in line]
        assert len(started) == 1 and len(ended) == 1, component
    assert any(line.startswith("StatisticsGen ") and "300 examples" in line for line in lines)
    assert any(line.startswith("Trainer done in ") and "3 epochs run" in line for line in lines)
    assert any(line.startswith("Evaluator ") and "metrics, blessed)" in line for line in lines)
    assert sum(line.startswith("epoch ") for line in lines) == 3
    assert "Blessed: True" in lines and not any("WARNING" in line for line in lines)
    with open(os.path.join(output_dir, "logs", "run.log")) as f:
        log = f.read()
    # absl/TFX records, Beam's and TensorFlow's own logging.
    assert "Component Trainer is running." in log and "apache_beam" in log
    assert "tensorflow" in log and len(log.splitlines()) > 10 * len(lines)


def serialized(path):
    """What a client sends: PNG/JPEG bytes (other formats made PNG as ExampleGen does)."""
    with open(path, "rb") as f:
        data = images.example_image_bytes(path, f.read())
    return readers.make_example(data, "unused").SerializeToString()


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


def eval_split(output_dir):
    """(examples uri, serialized raw examples, identity names) of the eval split (not in the
    gallery)."""
    (examples_uri,) = glob.glob(os.path.join(output_dir, "tfx", "ExampleGen", "examples", "*"))
    records = [r.numpy() for r in example_io.read_split(examples_uri, "eval")]
    labels = [
        tf.train.Example.FromString(r).features.feature["label"].bytes_list.value[0].decode()
        for r in records
    ]
    return examples_uri, np.array(records), np.array(labels)


def test_pushed_model_verifies_at_the_calibrated_threshold(runs):
    output_dir, (_, summary), *_ = runs
    model = tf.saved_model.load(summary["pushed_model_dir"])  # as TF Serving loads it
    assert set(model.signatures) == {"serving_default", "verify", "identify"}
    calibration = export.read_calibration(summary["pushed_model_dir"])
    threshold = summary["metrics"][em.threshold_name(1e-3)]
    assert calibration["far"] == 1e-3 and calibration["threshold"] == pytest.approx(threshold)
    assert summary["serving"]["threshold"] == calibration["threshold"]
    page = report.render(summary)
    assert "<h2>Serving</h2>" in page and f"{threshold:.4f}" in page
    assert calibration["gallery_size"] == summary["dataset"]["examples"]["train"]
    _, records, labels = eval_split(output_dir)
    rng = np.random.default_rng(0)
    first, second = rng.integers(0, len(labels), (2, 2000))
    keep = first != second
    first, second = first[keep], second[keep]
    verify = model.signatures["verify"](
        examples_a=tf.constant(records[first]), examples_b=tf.constant(records[second])
    )
    np.testing.assert_allclose(verify["threshold"].numpy(), threshold, rtol=1e-6)
    for name, function in model.signatures.items():  # Batch-first: the REST row format works.
        for output, spec in function.structured_outputs.items():
            assert spec.shape.rank >= 1 and spec.shape[0] is None, (name, output)
    same, positive = verify["same"].numpy(), labels[first] == labels[second]
    assert same[positive].mean() > same[~positive].mean() + 0.2
    assert same[~positive].mean() < 0.05  # calibrated at FAR 1e-3 on these very pairs' split
    embedding = model.signatures["serving_default"](examples=tf.constant(records))["embedding"]
    expected = em.pair_distances(embedding.numpy(), first, second)
    np.testing.assert_allclose(verify["distance"].numpy(), expected, atol=1e-5)


def test_pushed_model_identifies_held_out_images_of_gallery_identities(runs):
    output_dir, (_, summary), *_ = runs
    identify = tf.saved_model.load(summary["pushed_model_dir"]).signatures["identify"]
    _, records, labels = eval_split(output_dir)
    out = identify(examples=tf.constant(records))
    names = out["identities"].numpy().astype(str)
    assert names.shape == (len(labels), 5)
    assert (names[:, 0] == labels).mean() >= 0.6
    assert (names == labels[:, None]).any(axis=1).mean() >= 0.8


def test_an_identity_outside_the_gallery_is_mostly_unknown(runs, identity_folders, tmp_path):
    """--gallery PATH: a gallery of digits 0-7 only; digits 8 and 9 must come back unknown."""
    output_dir, (_, summary), *_ = runs
    gallery_dir = tmp_path / "gallery"
    gallery_dir.mkdir()
    for folder in sorted(identity_folders.glob("digit-*"))[:8]:
        os.symlink(folder, gallery_dir / folder.name)
    examples_uri, records, labels = eval_split(output_dir)
    export_dir = str(tmp_path / "served")
    settings = ServingSettings(gallery=str(gallery_dir), gallery_mode="centroids")
    facts = serving_component.write_serving_model(
        os.path.join(summary["artifacts"]["model"], "Format-Serving"),
        examples_uri,
        summary["artifacts"]["evaluation"],
        export_dir,
        settings,
    )
    assert facts["gallery_size"] == 8 and facts["gallery_source"] == str(gallery_dir)
    known = tf.saved_model.load(export_dir).signatures["identify"](examples=tf.constant(records))
    known = known["known"].numpy()
    outside = np.isin(labels, ["digit-8", "digit-9"])
    assert known[outside].mean() < 0.5
    assert known[outside].mean() < known[~outside].mean()


def test_predict_prints_each_signature_and_refuses_a_pixel_bomb(runs, identity_folders, capsys):
    output_dir, (_, summary), *_ = runs
    paths = sorted(glob.glob(str(identity_folders / "digit-3" / "*.png")))[:2]
    serving_dir = os.path.join(output_dir, "serving_model")
    assert cli.main(["predict", "--model", serving_dir, "identify", *paths]) == 0
    outputs = json.loads(capsys.readouterr().out)["outputs"]
    assert set(outputs) == {"identities", "distances", "known"}
    assert outputs["identities"][0][0] == "digit-3"
    assert cli.main(["predict", "--model", serving_dir, "verify", *paths]) == 0
    assert set(json.loads(capsys.readouterr().out)["outputs"]) == {"distance", "same", "threshold"}
    bomb = identity_folders.parent / "bomb.png"
    bomb.write_bytes(image_guard_test.png_declaring(20000, 20000))
    assert cli.main(["predict", "--model", serving_dir, "embed", str(bomb)]) == 1
    assert "20000 x 20000 = 400000000 pixels, above the limit" in capsys.readouterr().err


def test_second_run_hits_the_cache(runs):
    _, (_, first), (code, second), _ = runs
    assert code == 0
    assert second["run_id"] != first["run_id"]
    cached = {*UPSTREAM, "Trainer", "EmbeddingReport"}
    assert {c: second["components"][c] for c in cached} == dict.fromkeys(cached, "CACHED")
    # Same model: the Evaluator re-checks it against itself, the model served now.
    assert second["metrics"] == pytest.approx(first["metrics"], nan_ok=True)
    assert second["baseline_metrics"]["precision_at_1"] == pytest.approx(
        first["metrics"]["precision_at_1"]
    )


def test_the_trained_model_beats_the_raw_pixel_floor(runs):
    _, (_, good), *_ = runs
    metrics = good["metrics"]
    assert metrics["map_at_r_gain_over_reference"] >= good["blessing"]["floor_margin"]
    assert metrics["map_at_r_gain_over_reference"] == pytest.approx(
        metrics["map_at_r"] - metrics["reference_map_at_r"]
    )
    assert any("learned more than the no-learning reference" in r for r in good["blessing_reasons"])


def test_an_untrained_model_is_refused_by_the_floor_and_not_pushed(runs):
    output_dir, (_, good), _, (code, worse) = runs
    assert code == 2
    assert worse["blessed"] is False and worse["pushed_model_dir"] is None
    assert worse["components"]["Trainer"] == "COMPLETE"
    metrics = worse["metrics"]
    assert metrics["reference_map_at_r"] == pytest.approx(good["metrics"]["reference_map_at_r"])
    assert metrics["map_at_r_gain_over_reference"] < worse["blessing"]["floor_margin"]
    reasons = " ".join(worse["blessing_reasons"])
    assert "map_at_r_gain_over_reference" in reasons and "fails the lower bound" in reasons
    assert "does not beat the no-learning reference" in reasons
    assert sorted(os.listdir(os.path.join(output_dir, "serving_model"))) == worse["versions_before"]


def test_a_worse_model_is_not_blessed_nor_pushed_and_the_report_says_why(runs):
    output_dir, (_, good), _, (code, worse) = runs
    assert code == 2
    assert worse["metrics"]["precision_at_1"] < good["metrics"]["precision_at_1"] - 0.01
    reasons = " ".join(worse["blessing_reasons"])
    assert "fails the change threshold" in reasons and "served baseline" in reasons
    assert sorted(os.listdir(os.path.join(output_dir, "serving_model"))) == worse["versions_before"]

    assert cli.main(["report", "--output-dir", output_dir]) == 0
    with open(os.path.join(output_dir, "report.html")) as f:
        page = f.read()
    assert "Not blessed, not pushed" in page and "fails the change threshold" in page
    assert "reference_map_at_r" in page and "does not beat the no-learning reference" in page
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


def test_a_failing_component_gets_one_line_naming_it_the_input_and_the_problem(tmp_path, capsys):
    """A corrupt image passes the directory checks but stops ExampleGen: one line names the
    component, the data and the file, then the path of the full log; exit status 1."""
    data = tmp_path / "faces"
    for identity in ("ann", "bob"):
        (data / identity).mkdir(parents=True)
        (data / identity / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n but truncated")
    output_dir = tmp_path / "out"
    assert cli.main(["run", "--data", str(data), "--output-dir", str(output_dir)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["ExampleGen started ..."]
    error, log_line = captured.err.strip().splitlines()
    assert error.startswith(f"siamese-tfx run: ExampleGen failed on {data}: ")
    assert "1.png: corrupt image" in error
    log_path = output_dir / "logs" / "run.log"
    assert log_line.startswith(f"Full log: {log_path}")
    assert "Traceback" in log_path.read_text()


@pytest.fixture(scope="module")
def served_by_tf_serving_loader(runs):
    """The pushed model loaded by TensorFlow's C++ loader (LoadSavedModel, as TF Serving does);
    building the loader must work here: a build failure fails the tests, it never skips them."""
    _, (_, summary), *_ = runs
    with tf_serving_loader.ServingLoader(summary["pushed_model_dir"]) as loaded:
        yield summary["pushed_model_dir"], loaded


def test_tf_serving_loader_serves_every_signature_as_python_does(
    served_by_tf_serving_loader, identity_folders
):
    model_dir, loaded = served_by_tf_serving_loader
    assert {"serving_default", "verify", "identify"} <= set(loaded.signatures)
    paths = sorted(glob.glob(str(identity_folders / "*" / "*")))[::10]
    examples = [serialized(p) for p in paths]
    python = tf.saved_model.load(model_dir).signatures
    half = len(examples) // 2
    requests = {
        "serving_default": {"examples": examples},
        "identify": {"examples": examples},
        "verify": {"examples_a": examples[:half], "examples_b": examples[half : 2 * half]},
    }
    for name, inputs in requests.items():
        served = loaded.call(name, inputs)
        expected = python[name](**{k: tf.constant(v) for k, v in inputs.items()})
        assert set(served) == set(expected), name
        batch = len(next(iter(inputs.values())))
        for key, value in expected.items():
            value = value.numpy()
            assert served[key].shape[0] == batch, (name, key)  # Batch-first: row format works.
            if key == "distances":  # sqrt of |q|^2 - 2 q.g + |g|^2: noisy near 0, so squared
                np.testing.assert_allclose(served[key] ** 2, value**2, atol=1e-5, err_msg=name)
            elif value.dtype.kind == "f":
                np.testing.assert_allclose(served[key], value, atol=1e-5, err_msg=name)
            else:
                np.testing.assert_array_equal(served[key], value, err_msg=f"{name} {key}")
    labels = [os.path.basename(os.path.dirname(p)) for p in paths]
    identities = loaded.call("identify", {"examples": examples})["identities"][:, 0]
    assert np.mean(identities.astype(str) == np.array(labels)) >= 0.8


def test_tf_serving_loader_refuses_bad_inputs_and_keeps_serving(
    served_by_tf_serving_loader, identity_folders
):
    _, loaded = served_by_tf_serving_loader
    good = [serialized(sorted(glob.glob(str(identity_folders / "digit-1" / "*.png")))[0])]
    no_image = tf.train.Example()
    no_image.features.feature["label"].bytes_list.value.append(b"x")
    bomb = readers.make_example(image_guard_test.png_declaring(20000, 20000), "x")
    bad = {
        "garbage bytes": ("serving_default", {"examples": [b"\x00garbage\xff"]}, "parse"),
        "no image feature": ("identify", {"examples": [no_image.SerializeToString()]}, "image"),
        "pixel bomb": (
            "verify",
            {"examples_a": [bomb.SerializeToString()], "examples_b": good},
            "20000 x 20000",
        ),
        "verify batches differ": (
            "verify",
            {"examples_a": good * 2, "examples_b": good},
            "same number of examples",
        ),
    }
    for case, (name, inputs, words) in bad.items():
        with pytest.raises(tf_serving_loader.ServingError) as refused:
            loaded.call(name, inputs)
        assert refused.value.code == "INVALID_ARGUMENT", case
        assert words in str(refused.value), (case, str(refused.value)[:300])
        embedding = loaded.call("serving_default", {"examples": good})["embedding"]
        assert embedding.shape == (1, 64), case  # Still serving after the refusal.


def test_enrol_and_forget_write_versions_that_tf_serving_loader_serves(
    runs, identity_folders, tmp_path
):
    """People joined and removed without retraining, served by the C++ loader each time."""
    output_dir, (_, summary), *_ = runs
    serving_dir = str(tmp_path / "serving")
    shutil.copytree(os.path.dirname(summary["pushed_model_dir"]), serving_dir)
    newcomers = tmp_path / "newcomers"
    newcomers.mkdir()
    shutil.copytree(identity_folders / "digit-7", newcomers / "person-7")
    examples = [serialized(p) for p in sorted(glob.glob(str(newcomers / "person-7" / "*")))]
    enrolled = gallery_changes.enrol(serving_dir, str(newcomers))
    with tf_serving_loader.ServingLoader(enrolled["version"]) as loaded:
        top_k = loaded.call("identify", {"examples": examples})["identities"].astype(str)
    # Their images are digit-7's (most of them in the gallery already): both come back first.
    assert np.isin(top_k[:, :2], ["person-7", "digit-7"]).all()
    assert (top_k == "person-7").any(axis=1).all()
    removed = gallery_changes.forget(serving_dir, "person-7")
    forgot_digit = gallery_changes.forget(serving_dir, "digit-7")
    assert removed["removed_versions"] == [enrolled["version"]]
    assert served_baseline.versions(serving_dir) == [forgot_digit["version"]]
    with tf_serving_loader.ServingLoader(forgot_digit["version"]) as loaded:
        names = loaded.call("identify", {"examples": examples})["identities"].astype(str)
        embedding = loaded.call("serving_default", {"examples": examples})["embedding"]
    assert not np.isin(names, ["person-7", "digit-7"]).any()
    original = tf.saved_model.load(summary["pushed_model_dir"]).signatures["serving_default"]
    expected = original(examples=tf.constant(examples))["embedding"].numpy()
    np.testing.assert_allclose(embedding, expected, atol=1e-5)  # The same weights.
    # The next training run's ServingModel applies the ledger: digit-7 stays out of the train
    # split's gallery, and a person enrolled since comes back, embedded by the new model.
    shutil.copytree(identity_folders / "digit-8", newcomers / "person-8")
    shutil.rmtree(newcomers / "person-7")
    gallery_changes.enrol(serving_dir, str(newcomers))
    examples_uri, _, _ = eval_split(output_dir)
    next_run = str(tmp_path / "next_run")
    facts = serving_component.write_serving_model(
        os.path.join(summary["artifacts"]["model"], "Format-Serving"),
        examples_uri,
        summary["artifacts"]["evaluation"],
        next_run,
        ServingSettings(ledger_dir=serving_dir),
    )
    names = set(gallery_ledger.version_gallery(next_run)[1])
    assert "digit-7" not in names and "person-7" not in names and "person-8" in names
    assert facts["gallery_identities"] == 10  # 9 digits of the train split and person-8
