"""What the Evaluator wrote, read back: the metrics of each model and the gates it failed.

ServingModel calibrates from these metrics and the run summary explains the blessing from
them; neither recomputes what the Evaluator already measured.
"""

import tensorflow_model_analysis as tfma


def evaluation_metrics(evaluation_uri: str) -> tuple[dict, dict]:
    """(candidate metrics, baseline metrics) of the overall slice, name -> value."""
    candidate, baseline = {}, {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for item in metrics.metric_keys_and_values:
            key, value = item.key, item.value
            if key.is_diff or not value.HasField("double_value"):
                continue
            target = baseline if key.model_name == tfma.BASELINE_KEY else candidate
            target[key.name] = value.double_value.value
    return candidate, baseline


def candidate_metrics(evaluation_uri: str) -> dict[str, float]:
    """The evaluated (non-baseline) model's overall-slice metrics, name -> value."""
    return evaluation_metrics(evaluation_uri)[0]


def failed_gates(evaluation_uri: str) -> list:
    """TFMA's failures, each with metric_key (name, is_diff), metric_threshold, metric_value
    and message: the gates the candidate did not pass."""
    validation = tfma.load_validation_result(evaluation_uri)
    return [
        failure
        for per_slice in validation.metric_validations_per_slice
        for failure in per_slice.failures
    ]
