"""Evaluator: TFX's Evaluator, judging without a baseline when ServedBaseline found none.

The stock executor treats any baseline_model artifact as a baseline and then requires its
metrics. ServedBaseline always outputs an artifact (Model artifacts cannot be optional
outputs), so this executor drops one marked found=0 before delegating: the first run is judged
by the value thresholds only, as with an empty LatestBlessedModelResolver. Everything else is
the stock Evaluator.
"""

from tfx.components import Evaluator as TfxEvaluator
from tfx.components.evaluator import executor as tfx_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs

from components.baseline.served_baseline import found

BASELINE = standard_component_specs.BASELINE_MODEL_KEY


def without_missing_baseline(input_dict: dict) -> dict:
    """input_dict less baseline_model when its artifacts are ServedBaseline's found=0."""
    baselines = [a for a in input_dict.get(BASELINE, []) if found(a)]
    inputs = {key: value for key, value in input_dict.items() if key != BASELINE}
    if baselines:
        inputs[BASELINE] = baselines
    return inputs


class Executor(tfx_executor.Executor):
    """The stock Evaluator executor, after without_missing_baseline."""

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX API)
        return super().Do(without_missing_baseline(input_dict), output_dict, exec_properties)


class Evaluator(TfxEvaluator):
    """tfx.components.Evaluator with our executor; same spec, id 'Evaluator'."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
