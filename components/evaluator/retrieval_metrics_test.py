"""Tests for retrieval_metrics: NumPy oracle checks and an end-to-end TFMA run."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.evaluator.retrieval_metrics import precision_at_one

MODULE = "components.evaluator.retrieval_metrics"


def _oracle(embeddings, labels):
    """Brute-force leave-one-out 1-NN precision with fractional tie credit."""
    emb = np.asarray(embeddings, dtype=np.float64)
    labels = list(labels)
    total, count = 0.0, 0
    for i in range(len(labels)):
        if labels.count(labels[i]) < 2:
            continue
        dists = [np.linalg.norm(emb[i] - emb[j]) if j != i else np.inf for j in range(len(labels))]
        best = min(dists)
        tied = [j for j, d in enumerate(dists) if abs(d - best) <= 1e-6]
        total += sum(labels[j] == labels[i] for j in tied) / len(tied)
        count += 1
    return total / count if count else float("nan")


@pytest.mark.parametrize("seed", range(6))
def test_matches_bruteforce_oracle(seed):
    rng = np.random.default_rng(seed)
    n, d = rng.integers(5, 60), rng.integers(1, 8)
    if seed % 2:  # A coarse integer grid produces many exact distance ties.
        emb = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    else:
        emb = rng.normal(size=(n, d)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = rng.integers(0, max(2, n // 3), size=n)
    expected = _oracle(emb, labels)
    for block_size in (1, 7, 1024):
        assert precision_at_one(emb, labels, block_size=block_size) == pytest.approx(expected)


def test_hand_checked_cases():
    two_clusters = [[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]]
    assert precision_at_one(two_clusters, ["a", "a", "b", "b"]) == 1.0
    assert precision_at_one(two_clusters, ["a", "b", "a", "b"]) == 0.0
    # The singleton "c" is no query but still a distractor that is nearest to both "a"s.
    assert precision_at_one([[0.0], [10.0], [1.0]], ["a", "a", "c"]) == 0.0
    assert precision_at_one([[0.0], [10.0], [1.0], [11.0]], ["a", "a", "c", "a"]) == 2 / 3
    # Tie: query 0 is equidistant from an "a" and a "b" -> 1/2 credit; query 1's nearest is
    # query 0 (an "a") -> 1; the singleton "b" is not a query. (0.5 + 1) / 2.
    assert precision_at_one([[0.0], [1.0], [-1.0]], ["a", "a", "b"]) == 0.75
    # Collapsed embedding: all points tie, each query scores (n_label - 1) / (N - 1).
    collapsed = np.ones((5, 3)) / math.sqrt(3)
    assert precision_at_one(collapsed, [b"a", b"a", b"b", b"b", b"b"]) == pytest.approx(0.4)
    assert math.isnan(precision_at_one(np.eye(3), ["a", "b", "c"]))


def test_label_types_and_errors():
    emb = [[0.0], [0.1], [5.0], [5.1]]
    assert precision_at_one(emb, [b"3", b"3", b"person1", b"person1"]) == 1.0
    assert precision_at_one(emb, np.array([7, 7, 1, 1])) == 1.0
    with pytest.raises(ValueError):
        precision_at_one(emb, ["a", "a", "b"])
    with pytest.raises(ValueError):
        precision_at_one([0.0, 1.0], ["a", "a"])


# --- End-to-end through real TFMA -------------------------------------------------------------


class _PixelEmbedder(tf.Module):
    """serving_default: serialized tf.Example -> L2-normalised centred pixels of a 4x4 PNG."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        parsed = tf.io.parse_example(examples, {"image": tf.io.FixedLenFeature([], tf.string)})
        images = tf.map_fn(
            lambda png: tf.cast(tf.io.decode_png(png, channels=1), tf.float32),
            parsed["image"],
            fn_output_signature=tf.TensorSpec([None, None, 1], tf.float32),
        )
        pixels = tf.reshape(images, [-1, 16]) - 127.5
        return {"embedding": tf.math.l2_normalize(pixels, axis=1), "norm": tf.norm(pixels, axis=1)}


@pytest.fixture(scope="module")
def tfma_setup(tmp_path_factory):
    """40 examples: 8 identities whose images are noisy copies of a prototype + 4 singletons."""
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

    model_dir = str(root / "model")
    module = _PixelEmbedder()
    tf.saved_model.save(module, model_dir, signatures={"serving_default": module.serve})
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    embeddings = serve(examples=tf.constant(serialized))["embedding"].numpy()
    expected = precision_at_one(embeddings, labels)
    assert 0.5 < expected < 1.0  # Noise makes some neighbours wrong: a non-trivial value.
    return root, data_path, model_dir, expected


def _eval_config(lower_bound, label_in_model_spec):
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": lower_bound})
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                label_key="label" if label_in_model_spec else "",
                prediction_key="embedding",
                preprocessing_function_names=[],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(
                        class_name="PrecisionAtOne",
                        module=MODULE,
                        config="" if label_in_model_spec else '{"label_key": "label"}',
                        threshold=threshold,
                    )
                ]
            )
        ],
    )


@pytest.mark.parametrize(
    "margin, label_in_model_spec, want_ok",
    [(-0.05, True, True), (0.05, True, False), (-0.05, False, True)],
    ids=["passes", "fails", "label_from_features"],
)
def test_tfma_end_to_end(tfma_setup, margin, label_in_model_spec, want_ok):
    root, data_path, model_dir, expected = tfma_setup
    config = _eval_config(expected + margin, label_in_model_spec)
    output_path = str(root / f"out_{margin}_{label_in_model_spec}")
    tfma.run_model_analysis(
        eval_shared_model=tfma.default_eval_shared_model(
            eval_saved_model_path=model_dir, eval_config=config
        ),
        eval_config=config,
        data_location=data_path,
        output_path=output_path,
    )

    result = tfma.load_eval_result(output_path)
    ((slice_key, metrics),) = result.slicing_metrics
    assert slice_key == ()
    assert metrics[""][""]["precision_at_1"]["doubleValue"] == pytest.approx(expected, abs=1e-9)

    validation = tfma.load_validation_result(output_path)
    assert validation.validation_ok is want_ok
    failed = [
        failure.metric_key.name
        for per_slice in validation.metric_validations_per_slice
        for failure in per_slice.failures
    ]
    assert failed == ([] if want_ok else ["precision_at_1"])
