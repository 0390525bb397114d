"""The verification threshold, read from the Evaluator's metrics at the target FAR.

The Evaluator's EmbeddingMetrics computes threshold_at_far_<f> on the eval split's pairs and
says how many negative pairs it had (components.evaluator.embedding_metrics); this module only
picks the FAR: the target, or, when those pairs are fewer than 1/target, the smallest reported
FAR that they can measure (ServingSettings.calibration_far), with a note.
"""

import math

from components.evaluator import embedding_metrics as em
from components.serving.settings import ServingSettings


def calibrate(metrics: dict[str, float], settings: ServingSettings) -> dict:
    """threshold, far (the one used), far_target, negative_pairs and a note if it fell back."""
    if em.NEGATIVE_PAIRS not in metrics:
        raise ValueError(f"the Evaluator reported no {em.NEGATIVE_PAIRS}")
    negatives = int(metrics[em.NEGATIVE_PAIRS])
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
