"""The EvalConfig of the stock Evaluator: retrieval metrics and the blessing threshold."""

import tensorflow_model_analysis as tfma

METRICS_MODULE = "components.evaluator.retrieval_metrics"
PRECISION_AT_1 = "precision_at_1"


def create_eval_config(precision_at_1_lower_bound: float) -> tfma.EvalConfig:
    """Blesses a model whose leave-one-out Precision@1 on the eval split reaches the bound."""
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                label_key="label",
                prediction_key="embedding",
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(
                        class_name="PrecisionAtOne",
                        module=METRICS_MODULE,
                        threshold=tfma.MetricThreshold(
                            value_threshold=tfma.GenericValueThreshold(
                                lower_bound={"value": precision_at_1_lower_bound}
                            )
                        ),
                    ),
                ]
            )
        ],
    )
