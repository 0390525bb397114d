"""The Evaluator drops a baseline that ServedBaseline did not find, and keeps any other."""

from tfx.types import standard_artifacts

from components.baseline import served_baseline
from components.evaluator import component as evaluator


def model_artifact(found: int | None):
    artifact = standard_artifacts.Model()
    if found is not None:
        artifact.set_int_custom_property(served_baseline.FOUND, found)
    return artifact


def test_evaluator_drops_only_a_baseline_that_was_not_found():
    candidate = [model_artifact(None)]
    missing = {"model": candidate, "baseline_model": [model_artifact(0)]}
    assert evaluator.without_missing_baseline(missing) == {"model": candidate}
    served = {"model": candidate, "baseline_model": [model_artifact(1)]}
    assert evaluator.without_missing_baseline(served) == served
    resolved = {"model": candidate, "baseline_model": [model_artifact(None)]}  # Resolver's
    assert evaluator.without_missing_baseline(resolved) == resolved
    assert evaluator.without_missing_baseline({"model": candidate}) == {"model": candidate}
    assert issubclass(evaluator.Evaluator.EXECUTOR_SPEC.executor_class, evaluator.Executor)
