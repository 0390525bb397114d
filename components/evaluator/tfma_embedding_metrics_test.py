"""Tests for tfma_embedding_metrics: the P@1 oracle and the TFMA wrappers without a Beam run.

Real TFMA / TFX Evaluator runs are in evaluator_e2e_test.py.
"""

import math

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_plots_and_validations_evaluator
from tensorflow_model_analysis.metrics import metric_specs, metric_types

from components.evaluator import embedding_metrics as em
from components.evaluator.embedding_metrics import precision_at_one
from components.evaluator.tfma_embedding_metrics import EmbeddingMetrics

MODULE = "components.evaluator.tfma_embedding_metrics"


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


# --- TFMA wrappers --------------------------------------------------------------------------


def _metric_config(config: str, class_name: str = "EmbeddingMetrics") -> tfma.MetricConfig:
    return tfma.MetricConfig(class_name=class_name, module=MODULE, config=config)


def test_metric_from_config_json():
    metric = metric_specs.metric_instance(
        _metric_config('{"name": "map_at_r", "recall_at_k": [2], "far_targets": [0.05]}')
    )
    assert isinstance(metric, EmbeddingMetrics) and metric.name == "map_at_r"
    keys = [key.name for computation in metric.computations() for key in computation.keys]
    assert keys == em.metric_names(recall_at_k=[2], far_targets=[0.05])
    assert "val_at_far_5e-2" in keys
    assert metric_specs.metric_instance(_metric_config("")).name == "precision_at_1"
    with pytest.raises(ValueError, match="must be one of its keys"):
        EmbeddingMetrics(name="recall_at_7")  # Not emitted with the default recall_at_k.
    with pytest.raises(ValueError):
        EmbeddingMetrics(max_pairs=0)


def test_one_combiner_per_model_for_several_gated_keys():
    """Several EmbeddingMetrics configs (one per gated key) share one computation per model."""
    spec = tfma.MetricsSpec(
        metrics=[
            _metric_config(f'{{"name": "{name}"}}') for name in ("precision_at_1", "map_at_r")
        ],
        model_names=["candidate", "baseline"],
    )
    config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(name="candidate"), tfma.ModelSpec(name="baseline")],
        metrics_specs=[spec],
    )
    computations = metrics_plots_and_validations_evaluator._filter_and_separate_computations(
        metric_specs.to_computations([spec], eval_config=config)
    ).non_derived_computations
    embedding = [c for c in computations if any(k.name == "map_at_r" for k in c.keys)]
    assert sorted(c.keys[0].model_name for c in embedding) == ["baseline", "candidate"]
    for computation in embedding:
        assert [key.name for key in computation.keys] == em.metric_names()


def test_combiner_collects_once_and_emits_every_key():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=30)
    embeddings = (rng.normal(size=(30, 4)) + 2 * rng.normal(size=(5, 4))[labels]).astype(np.float32)
    (computation,) = EmbeddingMetrics(max_pairs=100).computations(example_weighted=False)
    combiner = computation.combiner
    accumulators = []
    for part in np.array_split(np.arange(30), 3):  # Beam may split and merge at will.
        accumulator = combiner.create_accumulator()
        for i in part:
            inputs = metric_types.StandardMetricInputs(
                labels=np.array([f"id{labels[i]}".encode()]), predictions=embeddings[i]
            )
            accumulator = combiner.add_input(accumulator, inputs)
        accumulators.append(accumulator)
    output = combiner.extract_output(combiner.merge_accumulators(accumulators[::-1]))
    expected = em.embedding_metrics(embeddings, [f"id{v}" for v in labels], max_pairs=100)
    assert {key.name: value for key, value in output.items()} == pytest.approx(expected)
    assert all(key.example_weighted is False and key.model_name == "" for key in output)
    empty = combiner.extract_output(combiner.create_accumulator())
    assert len(empty) == len(expected) and all(math.isnan(v) for v in empty.values())


def test_raw_pixel_reference_keeps_images_with_their_labels_across_merges(monkeypatch):
    """The floor's reference: images decoded in batches, accumulators merged in any order, and
    the result equal to raw-pixel MAP@R computed by hand; no image -> a clear error."""
    import tensorflow as tf

    from components.evaluator import tfma_embedding_metrics
    from components.keys import IMAGE as IMAGE_KEY

    monkeypatch.setattr(tfma_embedding_metrics, "_DECODE_BATCH", 4)  # Several decode batches.
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=24)
    prototypes = rng.integers(0, 256, size=(4, 6, 6))
    pixels = np.clip(prototypes[labels] + rng.normal(0, 70, size=(24, 6, 6)), 0, 255)
    pngs = [tf.io.encode_png(p.astype(np.uint8)[..., None]).numpy() for p in pixels]
    embeddings = rng.normal(size=(24, 3)).astype(np.float32)
    (computation,) = EmbeddingMetrics(reference_image_size=6).computations(example_weighted=False)
    combiner = computation.combiner
    accumulators = []
    for part in np.array_split(np.arange(24), 3):
        accumulator = combiner.create_accumulator()
        for i in part:
            inputs = metric_types.StandardMetricInputs(
                labels=np.array([str(labels[i]).encode()]),
                predictions=embeddings[i],
                features={IMAGE_KEY: np.array([pngs[i]], dtype=object)},
            )
            accumulator = combiner.add_input(accumulator, inputs)
        accumulators.append(accumulator)
    output = combiner.extract_output(combiner.merge_accumulators(accumulators[::-1]))
    values = {key.name: value for key, value in output.items()}

    raw = pixels.astype(np.uint8).reshape(24, -1) / 255.0
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    reference = em.retrieval_metrics(raw, labels)[em.MAP_AT_R]
    model = em.retrieval_metrics(embeddings, labels)[em.MAP_AT_R]
    assert values[em.REFERENCE_MAP_AT_R] == pytest.approx(reference, abs=1e-5)
    assert values[em.MAP_AT_R_GAIN] == pytest.approx(model - reference, abs=1e-5)
    assert reference > model + 0.2  # Pixels of noisy prototypes beat random embeddings.

    no_image = metric_types.StandardMetricInputs(
        labels=np.array([b"a"]), predictions=embeddings[0], features={}
    )
    with pytest.raises(ValueError, match="raw-pixel reference needs the encoded 'image'"):
        combiner.add_input(combiner.create_accumulator(), no_image)
