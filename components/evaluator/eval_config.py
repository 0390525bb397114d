"""The EvalConfig of the stock Evaluator: embedding metrics and the blessing thresholds.

All metrics come from one `EmbeddingMetrics` combiner (components/evaluator/
retrieval_metrics.py); the gating metric carries the value threshold (lower bound) and,
against a baseline model, the change threshold (maximum regression).

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

from components.evaluator import embedding_metrics as em
from components.evaluator.embedding_metrics import gating_metric_names

METRICS_MODULE = "components.evaluator.retrieval_metrics"
METRICS_CLASS = "EmbeddingMetrics"
PRECISION_AT_1 = em.PRECISION_AT_1
CANDIDATE_MODEL = tfma.CANDIDATE_KEY  # "candidate"
BASELINE_MODEL = tfma.BASELINE_KEY  # "baseline"


def create_eval_config(
    lower_bound: float | None = None,
    *,
    gating_metric: str = PRECISION_AT_1,
    max_regression: float | None = None,
    with_baseline: bool = False,
    extra_thresholds: Mapping[str, tfma.MetricThreshold] | None = None,
    recall_at_k: Sequence[int] = em.DEFAULT_RECALL_AT_K,
    max_pairs: int = em.DEFAULT_MAX_PAIRS,
    seed: int = em.DEFAULT_SEED,
    far_targets: Sequence[float] = em.DEFAULT_FAR_TARGETS,
) -> tfma.EvalConfig:
    """Blesses a model whose `gating_metric` on the eval split passes the thresholds.

    Args:
      lower_bound: the gating metric must be >= this.
      gating_metric: one of `gating_metric_names(recall_at_k, far_targets)`.
      max_regression: if set, the candidate's gating metric may be at most this much (absolute)
        below the baseline model's; only applies when a baseline model is evaluated.
      with_baseline: declare a 'candidate' and a 'baseline' (is_baseline) model spec.
      extra_thresholds: more thresholds, metric name -> tfma.MetricThreshold, on any emitted
        key (also lower-is-better ones such as eer with an upper_bound). Each becomes its own
        MetricConfig; TFMA shares the one combiner between them.
      recall_at_k, max_pairs, seed, far_targets: EmbeddingMetrics options.
    At least one of lower_bound / max_regression is required, so that something gates.
    """
    names = em.metric_names(recall_at_k, far_targets)
    if gating_metric not in gating_metric_names(recall_at_k, far_targets):
        raise ValueError(
            f"gating_metric must be one of {gating_metric_names(recall_at_k, far_targets)}, "
            f"got {gating_metric!r}"
        )
    if lower_bound is None and max_regression is None:
        raise ValueError("set lower_bound and/or max_regression: nothing would gate the model")
    if max_regression is not None and max_regression < 0:
        raise ValueError(f"max_regression must be >= 0, got {max_regression}")
    extra_thresholds = dict(extra_thresholds or {})
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

    def metric_config(name: str, threshold: tfma.MetricThreshold) -> tfma.MetricConfig:
        return tfma.MetricConfig(
            class_name=METRICS_CLASS,
            module=METRICS_MODULE,
            config=json.dumps({"name": name, **options}),
            threshold=threshold,
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
        signature_name="serving_default",
        label_key="label",
        prediction_key="embedding",
    )
