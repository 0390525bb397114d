"""Reads the latest run back from ML Metadata into the summary a user sees and summary.json."""

import json
import os
import textwrap

import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata
from tfx.types import artifact_utils

from components.baseline import choice

COMPLETE, CACHED = "COMPLETE", "CACHED"
# What the baseline was, by the component that supplied it.
BASELINE_NAMES = {
    choice.SERVED_MODEL_ID: "served baseline",
    choice.RESOLVER_ID: "latest blessed baseline",
}


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))


def latest_run(store, pipeline_name: str):
    """The newest pipeline_run context of `pipeline_name`, or None."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return None
    runs = [
        c
        for c in store.get_contexts_by_type("pipeline_run")
        if pipeline.id in {p.id for p in store.get_parent_contexts_by_context(c.id)}
    ]
    return max(runs, key=lambda c: c.create_time_since_epoch) if runs else None


def _component_of(store, execution) -> str | None:
    for context in store.get_contexts_by_execution(execution.id):
        if store.get_context_types_by_id([context.type_id])[0].name == "node":
            return context.name.split(".", 1)[-1]
    return None


def component_states(store, run_context) -> dict[str, str]:
    """Component id -> final execution state (COMPLETE, CACHED, FAILED, ...) in one run."""
    states = {}
    executions = sorted(store.get_executions_by_context(run_context.id), key=lambda e: e.id)
    for execution in executions:
        component = _component_of(store, execution)
        if component:
            state = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
            states[component] = state
    return states


def component_outputs(store, run_context) -> dict[str, dict[str, list]]:
    """Component id -> artifact type name -> artifacts it output (or reused from cache)."""
    type_names = {t.id: t.name for t in store.get_artifact_types()}
    executions = {
        e.id: _component_of(store, e) for e in store.get_executions_by_context(run_context.id)
    }
    events = [
        e
        for e in store.get_events_by_execution_ids(list(executions))
        if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
    ]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    outputs: dict[str, dict[str, list]] = {}
    for event in events:
        artifact = artifacts[event.artifact_id]
        by_type = outputs.setdefault(executions[event.execution_id], {})
        by_type.setdefault(type_names[artifact.type_id], []).append(artifact)
    return outputs


def _custom(artifact, name, default=None):
    if name not in artifact.custom_properties:
        return default
    value = artifact.custom_properties[name]
    return value.string_value if value.HasField("string_value") else value.int_value


def dataset_summary(statistics_uri: str, split_names: list[str], name: str) -> dict:
    counts, identities = {}, {}
    for split in split_names:
        stats = tfdv.load_stats_binary(
            os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
        )
        dataset = stats.datasets[0]
        counts[split] = int(dataset.num_examples)
        for feature in dataset.features:
            if feature.path.step == ["label"]:
                identities[split] = int(feature.string_stats.unique)
    return {
        "name": name,
        "examples": counts,
        "identities": max(identities.values(), default=0),
        "identities_per_split": identities,
    }


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


def baseline_name(components: dict) -> str:
    """'served baseline', 'latest blessed baseline' or 'baseline', from the run's components."""
    return next((BASELINE_NAMES[c] for c in components if c in BASELINE_NAMES), "baseline")


def blessing_reasons(
    evaluation_uri: str,
    blessing: dict,
    metrics: dict,
    baseline: dict,
    baseline_kind: str = "baseline",
) -> list:
    """Why the model was or was not blessed, in words."""
    metric = blessing.get("gating_metric", "precision_at_1")
    value = metrics.get(metric)
    validation = tfma.load_validation_result(evaluation_uri)
    reasons = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            name = failure.metric_key.name + (
                " change vs baseline" if failure.metric_key.is_diff else ""
            )
            threshold = failure.metric_threshold
            kind = "change threshold" if threshold.HasField("change_threshold") else "lower bound"
            value_text = f"{failure.metric_value.double_value.value:.4f}"
            detail = f": {failure.message}" if failure.message else ""
            reasons.append(f"{name} = {value_text} fails the {kind}{detail}")
    if value is not None and blessing.get("lower_bound") is not None:
        ok = value >= blessing["lower_bound"]
        reasons.append(
            f"{metric} = {value:.4f} {'>=' if ok else '<'} lower bound {blessing['lower_bound']}"
        )
    if value is not None and metric in baseline:
        change = value - baseline[metric]
        allowed = blessing.get("max_regression")
        verdict = "within" if allowed is None or change >= -allowed else "beyond"
        reasons.append(
            f"{metric}: candidate {value:.4f} vs {baseline_kind} "
            f"{baseline[metric]:.4f} (change {change:+.4f}, {verdict} the allowed "
            f"regression {allowed})"
        )
    elif value is not None:
        reasons.append(f"no {baseline_kind} yet: judged by the lower bound only")
    return reasons


def build_summary(
    metadata_path: str, pipeline_name: str, dataset_name: str, blessing: dict | None = None
) -> dict:
    store = open_store(metadata_path)
    run = latest_run(store, pipeline_name)
    if run is None:
        raise RuntimeError(f"{metadata_path}: no pipeline run recorded")
    outputs = component_outputs(store, run)
    artifacts = {}
    for component in ("StatisticsGen", "Trainer", "EmbeddingReport", "Evaluator", "Pusher"):
        artifacts.update(outputs.get(component, {}))
    summary = {
        "run_id": run.name,
        "components": component_states(store, run),
        "pushed_model_dir": None,
        "blessed": False,
        "metrics": {},
        "baseline_metrics": {},
        "blessing": blessing or {},
        "blessing_reasons": [],
        "dataset": None,
        "artifacts": {},
    }
    if "ExampleStatistics" in artifacts:
        stats = artifacts["ExampleStatistics"][-1]
        splits = artifact_utils.decode_split_names(stats.properties["split_names"].string_value)
        summary["dataset"] = dataset_summary(stats.uri, splits, dataset_name)
    if "ModelEvaluation" in artifacts:
        uri = artifacts["ModelEvaluation"][-1].uri
        summary["metrics"], summary["baseline_metrics"] = evaluation_metrics(uri)
        summary["blessing_reasons"] = blessing_reasons(
            uri,
            summary["blessing"],
            summary["metrics"],
            summary["baseline_metrics"],
            baseline_name(summary["components"]),
        )
    for key, type_name in (
        ("model_run", "ModelRun"),
        ("model", "Model"),
        ("embedding_report", "siamese_tfx.EmbeddingReport"),
        ("evaluation", "ModelEvaluation"),
    ):
        if type_name in artifacts:
            summary["artifacts"][key] = artifacts[type_name][-1].uri
    if "ModelBlessing" in artifacts:
        summary["blessed"] = bool(_custom(artifacts["ModelBlessing"][-1], "blessed", 0))
    if "PushedModel" in artifacts:
        pushed = artifacts["PushedModel"][-1]
        if _custom(pushed, "pushed", 0):
            summary["pushed_model_dir"] = _custom(pushed, "pushed_destination")
    return summary


def write_summary(summary: dict, path: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)


def format_summary(summary: dict) -> str:
    dataset = summary.get("dataset") or {}
    lines = [
        f"Run {summary['run_id']}",
        *textwrap.wrap(
            "Components: "
            + ", ".join(f"{k} {v.lower()}" for k, v in summary["components"].items()),
            width=98,
            subsequent_indent="  ",
        ),
        f"Dataset: {dataset.get('name')}  examples {dataset.get('examples')}  "
        f"identities {dataset.get('identities')}",
        "Metrics:",
        *textwrap.wrap(
            ", ".join(f"{k}={v:.4f}" for k, v in sorted(summary["metrics"].items())) or "none",
            width=96,
            initial_indent="  ",
            subsequent_indent="  ",
        ),
        f"Blessed: {summary['blessed']}",
        *(f"  - {reason}" for reason in summary.get("blessing_reasons", [])),
        f"Pushed model: {summary['pushed_model_dir'] or 'not pushed'}",
    ]
    return "\n".join(lines)
