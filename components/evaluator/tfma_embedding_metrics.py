"""Custom TFMA metrics for the stock TFX Evaluator: embedding retrieval and verification.

The formulas live in `components.evaluator.embedding_metrics` (NumPy); this module only
wraps them as a `tfma.metrics.Metric`. It uses one combiner per model/output
that collects every (embedding, label) pair of a slice once and computes all requested
values in `extract_output`. All embeddings of a slice are held in memory until then.

`EmbeddingMetrics` emits, per model (and output):
    precision_at_1, recall_at_<k> for k in recall_at_k (default 1, 5, 10), r_precision,
    map_at_r, roc_auc, eer, val_at_far_<f> and threshold_at_far_<f> for f in far_targets
    (default 1e-3 -> "1e-3", 1e-2 -> "1e-2"), mean_positive_distance,
    mean_negative_distance, distance_gap.
Its `name` (default "precision_at_1") must be one of those keys: it names the key that a
`MetricConfig.threshold` on this config gates (TFMA applies a MetricConfig's threshold to
the key called like the metric instance). To put thresholds on several keys, add one
MetricConfig per gated key with the same options and a different name, e.g.
`config='{"name": "map_at_r"}'`; TFMA de-duplicates the identical computations (same
combiner class, keys and preprocessors), so the embeddings are still collected once.
Consequently all EmbeddingMetrics configs of one model must share recall_at_k, max_pairs,
seed, far_targets, label_key and block_size (otherwise the first one silently wins).
`MetricsSpec.thresholds={'map_at_r': ...}` does NOT work in TFMA 0.47.1 for this metric:
those keys are built with example_weighted=None while post-export metrics emit
example_weighted=False, so validation fails with "Metric not found".

Example, verified with TFMA 0.47.1 (see components/evaluator/eval_config.py):

    tfma.MetricConfig(
        class_name='EmbeddingMetrics',
        module='components.evaluator.tfma_embedding_metrics',
        config='{"name": "map_at_r", "max_pairs": 1000000}',
        threshold=tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
            lower_bound={'value': 0.3})))

The blessing floor's reference (`"reference_image_size": S` and `"reference_channels": C` in
the config; 0 = none): the combiner also reads each eval example's encoded image feature
(`keys.IMAGE`), decodes it as the model's preprocessing does (at S x S, capped
at REFERENCE_MAX_SIZE to keep the vectors small), flattens and L2-normalises it, and emits
reference_map_at_r (map_at_r of those raw-pixel vectors, the score of no learning at all) and
map_at_r_gain_over_reference (the model's map_at_r minus it). Both models of a baseline run
get them; the floor threshold gates the candidate's gain.

Labels come from `ModelSpec.label_key` (bytes labels work: the raw label array is never
cast to float) or, with `"label_key": "label"` in the config, from the parsed features.
Example weights are ignored (a weighted spec gets the unweighted values).
"""

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2

from components.evaluator import embedding_metrics as em
from components.keys import IMAGE as IMAGE_KEY

__all__ = ["EmbeddingMetrics"]

EMBEDDING_METRICS_DEFAULT_NAME = em.PRECISION_AT_1
REFERENCE_MAX_SIZE = 32  # Raw-pixel reference vectors: at most 32 x 32 x channels floats.
_DECODE_BATCH = 256  # Encoded images held before they are decoded to reference vectors.


def emitted_names(recall_at_k, far_targets, reference_image_size: int = 0) -> list[str]:
    """Every key EmbeddingMetrics emits with these options."""
    names = em.metric_names(recall_at_k, far_targets)
    return names + list(em.REFERENCE_METRIC_NAMES) if reference_image_size else names


class EmbeddingMetrics(metric_types.Metric):
    """TFMA metric emitting every embedding metric from a single combiner (see module doc)."""

    def __init__(
        self,
        name: str = EMBEDDING_METRICS_DEFAULT_NAME,
        recall_at_k: Sequence[int] = em.DEFAULT_RECALL_AT_K,
        max_pairs: int = em.DEFAULT_MAX_PAIRS,
        seed: int = em.DEFAULT_SEED,
        far_targets: Sequence[float] = em.DEFAULT_FAR_TARGETS,
        label_key: str | None = None,
        block_size: int = em.DEFAULT_BLOCK_SIZE,
        reference_image_size: int = 0,
        reference_channels: int = 1,
    ):
        names = emitted_names(recall_at_k, far_targets, reference_image_size)
        if name not in names:
            raise ValueError(f"EmbeddingMetrics name must be one of its keys {names}, got {name!r}")
        if int(max_pairs) < 1 or int(block_size) < 1:
            raise ValueError(f"max_pairs ({max_pairs}) and block_size ({block_size}) must be >= 1")
        if int(reference_image_size) < 0 or int(reference_channels) not in (1, 3):
            raise ValueError(
                f"reference_image_size ({reference_image_size}) must be >= 0 and "
                f"reference_channels ({reference_channels}) 1 or 3"
            )
        super().__init__(
            _embedding_metrics_computations,
            name=name,
            recall_at_k=[int(k) for k in recall_at_k],
            max_pairs=int(max_pairs),
            seed=int(seed),
            far_targets=[float(far) for far in far_targets],
            label_key=label_key,
            block_size=int(block_size),
            reference_image_size=int(reference_image_size),
            reference_channels=int(reference_channels),
        )


metric_types.register_metric(EmbeddingMetrics)


def _embedding_metrics_computations(
    name: str = EMBEDDING_METRICS_DEFAULT_NAME,
    recall_at_k: Sequence[int] = em.DEFAULT_RECALL_AT_K,
    max_pairs: int = em.DEFAULT_MAX_PAIRS,
    seed: int = em.DEFAULT_SEED,
    far_targets: Sequence[float] = em.DEFAULT_FAR_TARGETS,
    label_key: str | None = None,
    block_size: int = em.DEFAULT_BLOCK_SIZE,
    reference_image_size: int = 0,
    reference_channels: int = 1,
    eval_config: config_pb2.EvalConfig | None = None,
    model_names: list[str] | None = None,
    output_names: list[str] | None = None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    del name  # Only selects the gated key; every key comes from the shared computation.
    compute = functools.partial(
        em.embedding_metrics,
        recall_at_k=tuple(recall_at_k),
        max_pairs=max_pairs,
        seed=seed,
        far_targets=tuple(far_targets),
        block_size=block_size,
    )
    names = emitted_names(recall_at_k, far_targets, reference_image_size)
    reference = None
    if reference_image_size:
        reference = RawPixels(reference_image_size, reference_channels, block_size)
    return _computations(
        names,
        compute,
        label_key,
        eval_config,
        model_names,
        output_names,
        example_weighted,
        reference,
    )


def _computations(
    names: list[str],
    compute: Callable[..., dict[str, float]],
    label_key: str | None,
    eval_config: config_pb2.EvalConfig | None,
    model_names: list[str] | None,
    output_names: list[str] | None,
    example_weighted: bool,
    reference: "RawPixels | None" = None,
) -> metric_types.MetricComputations:
    """One computation per model and output, emitting every name in `names`."""
    feature_keys = [key for key in (label_key, reference and IMAGE_KEY) if key]
    preprocessors = None
    if feature_keys:
        preprocessors = [metric_types.FeaturePreprocessor(feature_keys=feature_keys)]
    computations = []
    for model_name in model_names or [""]:
        for output_name in output_names or [""]:
            keys = {
                name: metric_types.MetricKey(
                    name=name,
                    model_name=model_name,
                    output_name=output_name,
                    example_weighted=example_weighted,
                )
                for name in names
            }
            computations.append(
                metric_types.MetricComputation(
                    keys=list(keys.values()),
                    preprocessors=preprocessors,
                    combiner=_EmbeddingCombiner(keys, compute, eval_config, label_key, reference),
                )
            )
    return computations


class _Accumulator:
    __slots__ = ["embeddings", "labels", "pixels", "encoded"]

    def __init__(self):
        self.embeddings: list[np.ndarray] = []
        self.labels: list[str] = []
        self.pixels: list[np.ndarray] = []  # Reference vectors, in the order of the labels...
        self.encoded: list[bytes] = []  # ...then the images not decoded yet.


class RawPixels:
    """The no-learning reference: eval images as flattened, L2-normalised pixel vectors."""

    def __init__(self, image_size: int, channels: int, block_size: int = em.DEFAULT_BLOCK_SIZE):
        self.size = min(int(image_size), REFERENCE_MAX_SIZE)
        self.channels = int(channels)
        self.block_size = block_size

    def vectors(self, encoded: list[bytes]) -> np.ndarray:
        """PNG/JPEG bytes -> [N, size * size * channels] unit vectors, decoded like the model's
        preprocessing (same decode, colour conversion and antialiased resize)."""
        import tensorflow as tf

        from components.transform.preprocessing import decode_images

        images = decode_images(tf.constant(encoded), self.size, self.channels).numpy()
        flat = images.reshape(len(encoded), -1)
        return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)

    def map_at_r(self, pixels: np.ndarray, labels: np.ndarray) -> float:
        return em.retrieval_metrics(pixels, labels, (1,), self.block_size)[em.MAP_AT_R]

    @staticmethod
    def metrics(reference: float, model_map_at_r: float) -> dict:
        """The reference's MAP@R and the model's gain over it."""
        return {
            em.REFERENCE_MAP_AT_R: reference,
            em.MAP_AT_R_GAIN: model_map_at_r - reference,
        }


def _decode_pending(accumulator: _Accumulator, reference: RawPixels) -> None:
    if accumulator.encoded:
        accumulator.pixels.append(reference.vectors(accumulator.encoded).astype(np.float32))
        accumulator.encoded = []


def _label_to_str(label) -> str:
    values = np.asarray(label).reshape(-1)
    if values.size != 1:
        raise ValueError(f"expected exactly one label per example, got {values!r}")
    value = values[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class _EmbeddingCombiner(beam.CombineFn):
    """Collects every (embedding, label) pair of a slice, then scores them at once."""

    def __init__(
        self,
        keys: dict[str, metric_types.MetricKey],
        compute: Callable[..., dict[str, float]],
        eval_config: config_pb2.EvalConfig | None,
        label_key: str | None,
        reference: RawPixels | None = None,
    ):
        self._keys = keys
        self._compute = compute
        self._eval_config = eval_config
        self._label_key = label_key
        self._reference = reference
        first = next(iter(keys.values()))
        self._model_name, self._output_name = first.model_name, first.output_name

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
                model_name=self._model_name,
                output_name=self._output_name,
                flatten=False,
                squeeze=False,
                allow_none=True,
            )
        )
        if self._label_key:
            label = element.get_features()[self._label_key]
        if label is None or np.size(label) == 0 or np.size(embedding) == 0:
            raise ValueError(
                f"{sorted(k.name for k in self._keys.values())} need a label and an embedding "
                f"per example: label={label!r}, embedding={embedding!r}"
            )
        accumulator.embeddings.append(np.asarray(embedding, dtype=np.float32).reshape(1, -1))
        accumulator.labels.append(_label_to_str(label))
        if self._reference:
            accumulator.encoded.append(self._encoded_image(element))
            if len(accumulator.encoded) >= _DECODE_BATCH:
                _decode_pending(accumulator, self._reference)
        return accumulator

    def _encoded_image(self, element: metric_types.StandardMetricInputs) -> bytes:
        image = (element.get_features() or {}).get(IMAGE_KEY)
        values = np.asarray(image if image is not None else []).reshape(-1)
        if values.size != 1 or not isinstance(values[0], bytes):
            raise ValueError(
                f"the raw-pixel reference needs the encoded '{IMAGE_KEY}' feature of each eval "
                f"example, got {type(image).__name__} of size {values.size}"
            )
        return values[0]

    def merge_accumulators(self, accumulators) -> _Accumulator:
        result = _Accumulator()
        for accumulator in accumulators:
            if self._reference:  # Keeps pixels in the order of the labels.
                _decode_pending(accumulator, self._reference)
            result.embeddings.extend(accumulator.embeddings)
            result.labels.extend(accumulator.labels)
            result.pixels.extend(accumulator.pixels)
        for name in ("embeddings", "pixels"):  # Keep the pickled accumulator compact.
            if len(getattr(result, name)) > 1:
                setattr(result, name, [np.concatenate(getattr(result, name), axis=0)])
        return result

    def extract_output(self, accumulator: _Accumulator) -> dict[metric_types.MetricKey, float]:
        if not accumulator.embeddings:
            return {key: float("nan") for key in self._keys.values()}
        embeddings = np.concatenate(accumulator.embeddings, axis=0)
        labels = np.asarray(accumulator.labels)
        if not self._reference:
            values = self._compute(embeddings, labels)
        else:
            _decode_pending(accumulator, self._reference)
            pixels = np.concatenate(accumulator.pixels, axis=0)
            # The two rankings are independent and NumPy sorts without the GIL: on 2 cores,
            # 10,000 eval images take 5.4 s together instead of 7.9 s one after the other.
            with ThreadPoolExecutor(max_workers=2) as pool:
                reference = pool.submit(self._reference.map_at_r, pixels, labels)
                values = self._compute(embeddings, labels)
                values.update(self._reference.metrics(reference.result(), values[em.MAP_AT_R]))
        return {key: values[formula] for formula, key in self._keys.items()}
