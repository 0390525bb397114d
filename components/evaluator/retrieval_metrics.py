"""Retrieval Precision@1 (leave-one-out 1-NN accuracy) as a custom TFMA metric.

`precision_at_one` is the pure NumPy computation; `PrecisionAtOne` wraps it as a
`tfma.metrics.Metric` for the stock TFX Evaluator. Verified with TFMA 0.47.1:

    tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name='serving_default',
                                    label_key='label', prediction_key='embedding',
                                    preprocessing_function_names=[])],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(
            class_name='PrecisionAtOne',
            module='components.evaluator.retrieval_metrics',
            threshold=tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
                lower_bound={'value': 0.5})))])])

Bytes labels through `ModelSpec.label_key` work because this combiner reads the
raw label array and never casts it to float. Passing `config='"label_key": "label"'`
reads the label from the parsed features instead (for when the ModelSpec has no
label_key). Semantics:
  * Gallery = every other example in the slice (leave-one-out); distance is
    Euclidean, equal to max-cosine for unit-norm embeddings.
  * Queries whose label occurs only once have no possible correct match and are left
    out of the denominator; they still serve as distractors. No valid query -> NaN.
  * Equidistant neighbours (within 1e-9) score the fraction of them sharing the
    query label, i.e. the expected value under random tie-breaking, so the result
    does not depend on the order in which Beam delivers examples.
  * Example weights are ignored (a weighted spec gets the unweighted value).
  * All embeddings of a slice are held in memory until extract_output.
"""

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2

PRECISION_AT_ONE_NAME = "precision_at_1"
_TIE_TOLERANCE = 1e-9


def precision_at_one(embeddings, labels, block_size: int = 1024) -> float:
    """Leave-one-out 1-NN precision of `embeddings` [N, D] w.r.t. `labels` [N]."""
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {emb.shape}")
    _, codes = np.unique(np.asarray(labels).reshape(-1), return_inverse=True)
    if codes.shape[0] != emb.shape[0]:
        raise ValueError(f"{codes.shape[0]} labels for {emb.shape[0]} embeddings")
    codes = codes.reshape(-1)
    valid = np.bincount(codes)[codes] >= 2
    if not valid.any():
        return float("nan")
    sq_norms = np.einsum("ij,ij->i", emb, emb)
    query_idx = np.flatnonzero(valid)
    score = 0.0
    for start in range(0, query_idx.size, block_size):
        rows = query_idx[start : start + block_size]
        # ||q - x||^2 minus the per-row constant ||q||^2, computed in place.
        dist = emb[rows] @ emb.T
        dist *= -2.0
        dist += sq_norms[None, :]
        dist[np.arange(rows.size), rows] = np.inf
        nearest = dist <= dist.min(axis=1, keepdims=True) + _TIE_TOLERANCE
        same = codes[None, :] == codes[rows][:, None]
        score += np.sum((nearest & same).sum(axis=1) / nearest.sum(axis=1))
    return float(score / query_idx.size)


class PrecisionAtOne(metric_types.Metric):
    """TFMA metric `precision_at_1`: leave-one-out nearest-neighbour accuracy."""

    def __init__(
        self,
        name: str = PRECISION_AT_ONE_NAME,
        label_key: str | None = None,
        block_size: int = 1024,
    ):
        super().__init__(
            _precision_at_one_computations, name=name, label_key=label_key, block_size=block_size
        )


metric_types.register_metric(PrecisionAtOne)


def _precision_at_one_computations(
    name: str = PRECISION_AT_ONE_NAME,
    label_key: str | None = None,
    block_size: int = 1024,
    eval_config: config_pb2.EvalConfig | None = None,
    model_names: list[str] | None = None,
    output_names: list[str] | None = None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    preprocessors = None
    if label_key:
        preprocessors = [metric_types.FeaturePreprocessor(feature_keys=[label_key])]
    computations = []
    for model_name in model_names or [""]:
        for output_name in output_names or [""]:
            key = metric_types.MetricKey(
                name=name,
                model_name=model_name,
                output_name=output_name,
                example_weighted=example_weighted,
            )
            computations.append(
                metric_types.MetricComputation(
                    keys=[key],
                    preprocessors=preprocessors,
                    combiner=_PrecisionAtOneCombiner(key, eval_config, label_key, block_size),
                )
            )
    return computations


class _Accumulator:
    __slots__ = ["embeddings", "labels"]

    def __init__(self):
        self.embeddings: list[np.ndarray] = []
        self.labels: list[str] = []


def _label_to_str(label) -> str:
    values = np.asarray(label).reshape(-1)
    if values.size != 1:
        raise ValueError(f"expected exactly one label per example, got {values!r}")
    value = values[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class _PrecisionAtOneCombiner(beam.CombineFn):
    """Collects every (embedding, label) pair of a slice, then scores them at once."""

    def __init__(
        self,
        key: metric_types.MetricKey,
        eval_config: config_pb2.EvalConfig | None,
        label_key: str | None,
        block_size: int,
    ):
        self._key = key
        self._eval_config = eval_config
        self._label_key = label_key
        self._block_size = block_size

    def create_accumulator(self) -> _Accumulator:
        return _Accumulator()

    def add_input(
        self, accumulator: _Accumulator, element: metric_types.StandardMetricInputs
    ) -> _Accumulator:
        # Applies ModelSpec.prediction_key (TFMA does it here, not in the extractor);
        # bytes labels pass through untouched because no label vocabulary is involved.
        label, embedding, _ = next(
            metric_util.to_label_prediction_example_weight(
                element,
                eval_config=self._eval_config,
                model_name=self._key.model_name,
                output_name=self._key.output_name,
                flatten=False,
                squeeze=False,
                allow_none=True,
            )
        )
        if self._label_key:
            label = element.get_features()[self._label_key]
        if label is None or np.size(label) == 0 or np.size(embedding) == 0:
            raise ValueError(
                f"{self._key.name} needs a label and an embedding per example: "
                f"label={label!r}, embedding={embedding!r}"
            )
        accumulator.embeddings.append(np.asarray(embedding, dtype=np.float32).reshape(1, -1))
        accumulator.labels.append(_label_to_str(label))
        return accumulator

    def merge_accumulators(self, accumulators) -> _Accumulator:
        result = _Accumulator()
        for accumulator in accumulators:
            result.embeddings.extend(accumulator.embeddings)
            result.labels.extend(accumulator.labels)
        if len(result.embeddings) > 1:  # Keep the pickled accumulator compact.
            result.embeddings = [np.concatenate(result.embeddings, axis=0)]
        return result

    def extract_output(self, accumulator: _Accumulator) -> dict[metric_types.MetricKey, float]:
        if not accumulator.embeddings:
            return {self._key: float("nan")}
        embeddings = np.concatenate(accumulator.embeddings, axis=0)
        labels = np.asarray(accumulator.labels)
        return {self._key: precision_at_one(embeddings, labels, self._block_size)}
