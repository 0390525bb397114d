"""The verification threshold, read from the Evaluator's metrics at the target FAR.

The Evaluator's EmbeddingMetrics computes threshold_at_far_<f> on the eval split's pairs
(components.evaluator.embedding_metrics); this module only picks the FAR: the target, or,
when the eval split has fewer than 1/target negative pairs, the smallest reported FAR that
they can measure (ServingSettings.calibration_far), with a note.
"""

import math

import numpy as np
import tensorflow_model_analysis as tfma

from components.evaluator import embedding_metrics as em
from components.serving.settings import ServingSettings


def candidate_metrics(evaluation_uri: str) -> dict[str, float]:
    """The evaluated (non-baseline) model's overall-slice metrics, name -> value."""
    values = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for item in metrics.metric_keys_and_values:
            key = item.key
            if key.is_diff or key.model_name == tfma.BASELINE_KEY:
                continue
            if item.value.HasField("double_value"):
                values[key.name] = item.value.double_value.value
    return values


def negative_pairs(labels, max_pairs: int = em.DEFAULT_MAX_PAIRS) -> int:
    """Negative pairs among the Evaluator's verification pairs of items with these labels."""
    labels = np.asarray(labels)
    first, second = em.verification_pairs(np.zeros((labels.size, 1)), labels, max_pairs)
    return int(np.sum(labels[first] != labels[second]))


def calibrate(metrics: dict[str, float], settings: ServingSettings, negatives: int) -> dict:
    """threshold, far (the one used), far_target, negative_pairs and a note if it fell back."""
    far = settings.calibration_far(negatives)
    name = em.threshold_name(far)
    if name not in metrics:
        raise ValueError(
            f"the Evaluator reported no {name}: its EvalConfig needs far_targets "
            f"{list(settings.far_targets())} (create_eval_config(far_targets=...))"
        )
    threshold = metrics[name]
    notes = []
    if far != settings.far:
        notes.append(
            f"{negatives} negative eval pairs cannot measure FAR {settings.far:g}; "
            f"calibrated at FAR {far:g} instead"
        )
    if not math.isfinite(threshold):
        notes.append(f"no distance has FAR <= {far:g}: every pair is refused")
    return {
        "threshold": threshold if math.isfinite(threshold) else None,
        "far": far,
        "far_target": settings.far,
        "negative_pairs": negatives,
        "val_at_far": metrics.get(em.val_name(far)),
        "notes": notes,
    }
