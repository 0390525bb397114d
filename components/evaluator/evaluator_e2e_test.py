"""End-to-end: real TFMA runs and the stock TFX Evaluator executor on tiny SavedModels.

Checks that the reported metrics equal the NumPy computation on the same embeddings, that
value thresholds on several keys, change thresholds against a baseline and labels read from
the parsed features gate as intended.
"""

import json
import math
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import artifact_utils, standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components.evaluator import embedding_metrics as em
from components.evaluator.eval_config import create_eval_config
from components.evaluator.eval_config_test import gates

MODULE = "components.evaluator.tfma_embedding_metrics"


class _PixelEmbedder(tf.Module):
    """serving_default: serialized tf.Example -> L2-normalised centred pixels of a 4x4 PNG.

    `keep` < 16 keeps only the first pixels: a worse embedding of the same data.
    """

    def __init__(self, keep: int = 16):
        super().__init__()
        self.keep = keep

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        parsed = tf.io.parse_example(examples, {"image": tf.io.FixedLenFeature([], tf.string)})
        images = tf.map_fn(
            lambda png: tf.cast(tf.io.decode_png(png, channels=1), tf.float32),
            parsed["image"],
            fn_output_signature=tf.TensorSpec([None, None, 1], tf.float32),
        )
        pixels = tf.reshape(images, [-1, 16])[:, : self.keep] - 127.5
        return {"embedding": tf.math.l2_normalize(pixels, axis=1), "norm": tf.norm(pixels, axis=1)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """40 examples: 8 identities whose images are noisy copies of a prototype + 4 singletons;
    a good model (all 16 pixels) and a bad one (3 pixels), with their direct embeddings."""
    root = tmp_path_factory.mktemp("tfma")
    rng = np.random.default_rng(0)
    prototypes = rng.integers(0, 256, size=(8, 16))
    serialized, labels = [], []
    for i in range(40):
        if i % 9 == 8:
            label, pixels = f"person{i}", rng.integers(0, 256, size=16)
        else:
            label, pixels = str(i % 9), prototypes[i % 9] + rng.normal(0, 60, size=16)
        png = tf.io.encode_png(np.clip(pixels, 0, 255).astype(np.uint8).reshape(4, 4, 1))
        feature = {
            "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png.numpy()])),
            "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        serialized.append(example.SerializeToString())
        labels.append(label)
    data_path = str(root / "eval.tfrecord")
    with tf.io.TFRecordWriter(data_path) as writer:
        for record in serialized:
            writer.write(record)

    models, embeddings = {}, {}
    for name, keep in (("good", 16), ("bad", 3)):
        module = _PixelEmbedder(keep)
        models[name] = str(root / name)
        tf.saved_model.save(module, models[name], signatures={"serving_default": module.serve})
        serve = tf.saved_model.load(models[name]).signatures["serving_default"]
        embeddings[name] = serve(examples=tf.constant(serialized))["embedding"].numpy()
    good = em.precision_at_one(embeddings["good"], labels)
    bad = em.precision_at_one(embeddings["bad"], labels)
    assert 0.5 < good < 1.0 and bad < good - 0.1  # Non-trivial values, a clear regression.
    return {
        "root": root,
        "data": data_path,
        "models": models,
        "embeddings": embeddings,
        "labels": labels,
    }


def _failures(validation) -> list[tuple]:
    return sorted(
        (f.metric_key.name, f.metric_key.model_name, f.metric_key.is_diff, f.message)
        for per_slice in validation.metric_validations_per_slice
        for f in per_slice.failures
    )


def _run(setup, tag: str, config: tfma.EvalConfig, models: dict[str, str]):
    """Runs TFMA on {model name: "good"|"bad"}; returns metrics per model and failures."""
    output_path = str(setup["root"] / tag)
    shared = [
        tfma.default_eval_shared_model(
            eval_saved_model_path=setup["models"][model], model_name=name, eval_config=config
        )
        for name, model in models.items()
    ]
    tfma.run_model_analysis(
        eval_shared_model=shared if len(shared) > 1 else shared[0],
        eval_config=config,
        data_location=setup["data"],
        output_path=output_path,
    )
    metrics = {}
    for name in models:
        result = tfma.load_eval_result(output_path, model_name=name or None)
        ((slice_key, values),) = result.slicing_metrics
        assert slice_key == ()
        metrics[name] = {k: v["doubleValue"] for k, v in values[""][""].items()}
    validation = tfma.load_validation_result(output_path)
    failures = _failures(validation)
    assert validation.validation_ok == (not failures)
    return metrics, failures


def _same(value, expected) -> bool:
    if isinstance(value, str) or math.isnan(expected):  # TFMA writes NaN as "NaN".
        return str(value).lower() == "nan" and math.isnan(expected)
    return value == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_reported_metrics_equal_numpy_and_gate_several_keys(setup):
    # max_pairs below the 780 pairs of 40 examples: the sampled path must agree too, which
    # only holds because sampling does not depend on the order Beam delivers examples in.
    expected = em.embedding_metrics(setup["embeddings"]["good"], setup["labels"], max_pairs=300)
    assert 0.5 < expected["map_at_r"] < 0.95 and expected["roc_auc"] < 1.0
    config = create_eval_config(
        gates(expected["precision_at_1"] - 0.05),
        max_pairs=300,
        extra_thresholds={
            "map_at_r": tfma.MetricThreshold(
                value_threshold=tfma.GenericValueThreshold(
                    lower_bound={"value": expected["map_at_r"] + 0.05}
                )
            ),
            "eer": tfma.MetricThreshold(
                value_threshold=tfma.GenericValueThreshold(
                    upper_bound={"value": expected["eer"] + 0.05}
                )
            ),
        },
    )
    # The MetricsSpec.thresholds route does not reach post-export keys in TFMA 0.47.1.
    config.metrics_specs[0].thresholds["roc_auc"].value_threshold.lower_bound.value = 0.0
    metrics, failures = _run(setup, "several_keys", config, {"": "good"})

    assert set(metrics[""]) == set(em.metric_names())
    for name, value in expected.items():
        assert _same(metrics[""][name], value), (name, metrics[""][name], value)
    assert failures == [("map_at_r", "", False, ""), ("roc_auc", "", False, "Metric not found.")]


@pytest.mark.parametrize(
    "candidate, want_ok", [("bad", False), ("good", True)], ids=["regression", "no_regression"]
)
def test_change_threshold_against_baseline(setup, candidate, want_ok):
    config = create_eval_config(gates(0.0, 0.01), with_baseline=True)
    metrics, failures = _run(
        setup, f"baseline_{candidate}", config, {"candidate": candidate, "baseline": "good"}
    )
    labels = setup["labels"]
    for name, model in (("candidate", candidate), ("baseline", "good")):
        expected = em.precision_at_one(setup["embeddings"][model], labels)
        assert metrics[name]["precision_at_1"] == pytest.approx(expected, abs=1e-9)
    # The candidate fails only the change threshold (is_diff) of the gating metric.
    assert failures == ([] if want_ok else [("precision_at_1", "candidate", True, "")])


def _tfx_evaluate(setup, tag: str, candidate: str, baseline: str | None, config):
    """The stock TFX Evaluator executor, as the pipeline runs it: (blessed, failures)."""
    root = setup["root"] / "tfx"
    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(["eval"])
    if not os.path.exists(examples.uri):
        os.makedirs(os.path.join(examples.uri, "Split-eval"))
        shutil.copy(setup["data"], os.path.join(examples.uri, "Split-eval", "data.tfrecord"))

    def model_artifact(name):
        artifact = standard_artifacts.Model()
        artifact.uri = str(root / name)
        if not os.path.exists(artifact.uri):
            shutil.copytree(setup["models"][name], os.path.join(artifact.uri, "Format-Serving"))
        return artifact

    inputs = {specs.EXAMPLES_KEY: [examples], specs.MODEL_KEY: [model_artifact(candidate)]}
    if baseline:
        inputs[specs.BASELINE_MODEL_KEY] = [model_artifact(baseline)]
    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(root / tag / "evaluation"), str(root / tag / "blessing")
    os.makedirs(evaluation.uri)
    os.makedirs(blessing.uri)
    evaluator_executor.Executor().Do(
        inputs,
        {specs.EVALUATION_KEY: [evaluation], specs.BLESSING_KEY: [blessing]},
        {
            specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(config),
            specs.EXAMPLE_SPLITS_KEY: json.dumps(["eval"]),
        },
    )
    failures = _failures(tfma.load_validation_result(evaluation.uri))
    return bool(blessing.get_int_custom_property("blessed")), failures


def test_tfx_evaluator_blocks_a_regression(setup):
    """The pipeline's path. The first run without a baseline (change threshold dropped) is
    covered by eval_config_test.test_first_run_without_baseline_drops_the_change_threshold."""
    bad = em.precision_at_one(setup["embeddings"]["bad"], setup["labels"])
    config = create_eval_config(gates(bad - 0.05, 0.01), with_baseline=True)
    blessed, failures = _tfx_evaluate(setup, "regression_tfx", "bad", "good", config)
    # Not blessed because of the baseline only: the lower bound alone passes.
    assert not blessed and failures == [("precision_at_1", "candidate", True, "")]


def test_labels_from_parsed_features(setup):
    """EmbeddingMetrics reading the label from the parsed features (config `label_key`), with
    a failing lower bound."""
    expected = em.precision_at_one(setup["embeddings"]["good"], setup["labels"])
    config = tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                prediction_key="embedding",
                preprocessing_function_names=[],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(
                        class_name="EmbeddingMetrics",
                        module=MODULE,
                        config='{"label_key": "label"}',
                        threshold=tfma.MetricThreshold(
                            value_threshold=tfma.GenericValueThreshold(
                                lower_bound={"value": expected + 0.05}
                            )
                        ),
                    )
                ]
            )
        ],
    )
    metrics, failures = _run(setup, "from_features", config, {"": "good"})
    assert metrics[""]["precision_at_1"] == pytest.approx(expected, abs=1e-9)
    assert failures == [("precision_at_1", "", False, "")]


def _raw_pixel_map_at_r(setup) -> float:
    """The floor's reference by hand: the 4x4 PNGs as unit vectors of their [0, 1] pixels."""
    pixels = []
    for record in tf.data.TFRecordDataset(setup["data"]).as_numpy_iterator():
        png = tf.train.Example.FromString(record).features.feature["image"].bytes_list.value[0]
        pixels.append(tf.io.decode_png(png).numpy().reshape(-1) / 255.0)
    pixels = np.array(pixels)
    pixels /= np.linalg.norm(pixels, axis=1, keepdims=True)
    return em.retrieval_metrics(pixels, setup["labels"])[em.MAP_AT_R]


def test_floor_compares_with_raw_pixels_read_from_the_eval_examples(setup):
    """The pipeline's path: the stock TFX Evaluator hands the combiner the parsed image feature;
    a model whose map_at_r does not beat raw pixels by the margin is not blessed."""
    reference = _raw_pixel_map_at_r(setup)
    gains = {
        name: em.retrieval_metrics(setup["embeddings"][name], setup["labels"])[em.MAP_AT_R]
        - reference
        for name in ("good", "bad")
    }
    assert gains["bad"] < gains["good"] - 0.1
    margin = (gains["good"] + gains["bad"]) / 2
    config = create_eval_config(gates(0.0, floor=margin), reference_image=(4, 1))
    for name, want_blessed in (("good", True), ("bad", False)):
        blessed, failures = _tfx_evaluate(setup, f"floor_{name}", name, None, config)
        assert blessed == want_blessed
        assert failures == ([] if want_blessed else [(em.MAP_AT_R_GAIN, "", False, "")])
        metrics = {
            item.key.name: item.value.double_value.value
            for per_slice in tfma.load_metrics(
                str(setup["root"] / "tfx" / f"floor_{name}" / "evaluation")
            )
            for item in per_slice.metric_keys_and_values
        }
        assert metrics[em.REFERENCE_MAP_AT_R] == pytest.approx(reference, abs=1e-6)
        assert metrics[em.MAP_AT_R_GAIN] == pytest.approx(gains[name], abs=1e-6)
