"""Which model the Evaluator compares a candidate against: `served`, `resolver` or `none`.

served (default): ServedBaseline, the newest version under the serving dir, on any orchestrator
  (local, open-source KFP, Vertex AI).
resolver: TFX's LatestBlessedModelResolver over ML Metadata; it compiles to KFP `resolver`
  executors that only Vertex AI Pipelines runs.
none: no baseline; the thresholds alone decide.

TFX is imported only where the nodes are built: the command line reads the choices before
anything heavy is imported.
"""

SERVED, RESOLVER, NONE = "served", "resolver", "none"
BASELINES = (SERVED, RESOLVER, NONE)
SERVED_BASELINE_ID = "ServedBaseline"
RESOLVER_ID = "LatestBlessedModelResolver"


def create_baseline(baseline: str, serving_dir: str) -> tuple[list, object | None]:
    """(nodes to add to the pipeline, the Evaluator's baseline_model channel or None)."""
    from tfx.dsl.components.common.resolver import Resolver
    from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
        LatestBlessedModelStrategy,
    )
    from tfx.types import Channel, standard_artifacts

    from components.baseline.served_baseline import ServedBaseline

    if baseline == SERVED:
        served = ServedBaseline(serving_dir=serving_dir).with_id(SERVED_BASELINE_ID)
        return [served], served.outputs["model"]
    if baseline == RESOLVER:
        resolver = Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        ).with_id(RESOLVER_ID)
        return [resolver], resolver.outputs["model"]
    return [], None


def uncached(pipeline_ir) -> None:
    """Turns the cache off for ServedBaseline in a compiled TFX IR (what is served changes).

    The step has no inputs and a constant parameter, so a cache would hand back the model that
    was served when it first ran.
    """
    for node in pipeline_ir.nodes:
        if node.pipeline_node.node_info.id == SERVED_BASELINE_ID:
            node.pipeline_node.execution_options.caching_options.enable_cache = False
