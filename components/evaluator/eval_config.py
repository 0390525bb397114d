"""The EvalConfig of the stock Evaluator: embedding metrics and the blessing thresholds.

All metrics come from one `EmbeddingMetrics` combiner (components/evaluator/
tfma_embedding_metrics.py); the gating metric carries the value threshold (lower bound) and,
against a baseline model, the change threshold (maximum regression). The blessing floor is a
second MetricConfig gating map_at_r_gain_over_reference (the candidate's map_at_r minus that of
raw pixels, computed by the same combiner from the eval images) with the floor margin as its
lower bound.

Baselines (verified with TFMA 0.47.1 / TFX 1.16): change thresholds only apply when two
models are evaluated. `with_baseline=True` declares a 'candidate' and an `is_baseline`
'baseline' model spec, which `tfma.run_model_analysis` needs for two EvalSharedModels of
those names. The TFX Evaluator, given `baseline_model=`, also adds the baseline spec itself
to a config with one unnamed model spec; without a baseline model (first run) it drops the
change thresholds and judges the model on the lower bound alone ("rubber stamp"), while
`tfma.run_model_analysis` with one model raises unless that model is rubber-stamped.
"""

import json
from collections.abc import Mapping, Sequence

import tensorflow_model_analysis as tfma

from components import keys
from components.evaluator import embedding_metrics as em
from components.evaluator.blessing import Blessing
from components.evaluator.embedding_metrics import gating_metric_names
from components.evaluator.tfma_embedding_metrics import emitted_names

METRICS_MODULE = "components.evaluator.tfma_embedding_metrics"
METRICS_CLASS = "EmbeddingMetrics"
CANDIDATE_MODEL = tfma.CANDIDATE_KEY  # "candidate"
BASELINE_MODEL = tfma.BASELINE_KEY  # "baseline"
INFERENCE_BATCH_SIZE = 256  # eval examples per call of the serving signature


def create_eval_config(
    blessing: Blessing,
    *,
    with_baseline: bool = False,
    change_threshold: bool = True,
    extra_thresholds: Mapping[str, tfma.MetricThreshold] | None = None,
    recall_at_k: Sequence[int] = em.DEFAULT_RECALL_AT_K,
    max_pairs: int = em.DEFAULT_MAX_PAIRS,
    seed: int = em.DEFAULT_SEED,
    far_targets: Sequence[float] = em.DEFAULT_FAR_TARGETS,
    reference_image: tuple[int, int] | None = None,
) -> tfma.EvalConfig:
    """Blesses a model whose gating metric on the eval split passes `blessing`'s gates.

    The Blessing has checked its own values; this checks only what depends on the metric
    options here.

    Args:
      blessing: the gates: lower bound and maximum regression on the gating metric (the
        regression only applies when a baseline model is evaluated), and the raw-pixel floor.
      with_baseline: declare a 'candidate' and a 'baseline' (is_baseline) model spec.
      change_threshold: False leaves the maximum regression out (no baseline is ever given).
      extra_thresholds: more thresholds, metric name -> tfma.MetricThreshold, on any emitted
        key (also lower-is-better ones such as eer with an upper_bound). Each becomes its own
        MetricConfig; TFMA shares the one combiner between them.
      recall_at_k, max_pairs, seed, far_targets: EmbeddingMetrics options.
      reference_image: (image_size, channels) the raw-pixel reference decodes the eval images
        at, as the model's preprocessing does; required with a floor.
    """
    lower_bound, floor_margin = blessing.lower_bound, blessing.floor_gain
    max_regression = blessing.max_regression if change_threshold else None
    gating_metric = blessing.gating_metric
    if floor_margin is not None and not reference_image:
        raise ValueError("a blessing floor needs reference_image=(image_size, channels)")
    reference_size, reference_channels = reference_image or (0, 1)
    names = emitted_names(recall_at_k, far_targets, reference_size)
    if gating_metric not in gating_metric_names(recall_at_k, far_targets):
        raise ValueError(
            f"gating metric {gating_metric!r} is not emitted with these options; choose from "
            f"{gating_metric_names(recall_at_k, far_targets)}"
        )
    extra_thresholds = dict(extra_thresholds or {})
    if floor_margin is not None:
        if em.MAP_AT_R_GAIN in extra_thresholds:
            raise ValueError(f"the floor already sets the {em.MAP_AT_R_GAIN} threshold")
        floor = tfma.MetricThreshold()
        floor.value_threshold.lower_bound.value = float(floor_margin)
        extra_thresholds[em.MAP_AT_R_GAIN] = floor
    unknown = sorted(set(extra_thresholds) - set(names))
    if unknown or gating_metric in extra_thresholds:
        raise ValueError(
            f"extra_thresholds keys must be emitted metrics other than the gating metric "
            f"{gating_metric!r}: {names}; got {sorted(extra_thresholds)}"
        )

    gate = tfma.MetricThreshold()
    if lower_bound is not None:
        gate.value_threshold.lower_bound.value = float(lower_bound)
    if max_regression is not None:
        gate.change_threshold.direction = tfma.MetricDirection.HIGHER_IS_BETTER
        gate.change_threshold.absolute.value = -float(max_regression)

    options = {
        "recall_at_k": [int(k) for k in recall_at_k],
        "max_pairs": int(max_pairs),
        "seed": int(seed),
        "far_targets": [float(far) for far in far_targets],
    }
    if reference_size:
        options["reference_image_size"] = int(reference_size)
        options["reference_channels"] = int(reference_channels)

    def metric_config(name: str, threshold: tfma.MetricThreshold) -> tfma.MetricConfig:
        return tfma.MetricConfig(
            class_name=METRICS_CLASS,
            module=METRICS_MODULE,
            config=json.dumps({"name": name, **options}),
            threshold=threshold if threshold.ByteSize() else None,
        )

    metrics = [metric_config(gating_metric, gate)]
    metrics += [metric_config(name, threshold) for name, threshold in extra_thresholds.items()]

    if with_baseline:
        model_specs = [
            _model_spec(name=CANDIDATE_MODEL),
            _model_spec(name=BASELINE_MODEL, is_baseline=True),
        ]
    else:
        model_specs = [_model_spec()]
    return tfma.EvalConfig(
        model_specs=model_specs,
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


def _model_spec(name: str = "", is_baseline: bool = False) -> tfma.ModelSpec:
    return tfma.ModelSpec(
        name=name,
        is_baseline=is_baseline,
        signature_name=keys.SERVING_DEFAULT,
        label_key=keys.LABEL,
        prediction_key=keys.EMBEDDING,
        # Fixed batches: Beam's adaptive batching settled on ~40 examples a call, each call
        # parsing, decoding and embedding (10,000 Fashion-MNIST eval images: 133 calls).
        inference_batch_size=INFERENCE_BATCH_SIZE,
    )
