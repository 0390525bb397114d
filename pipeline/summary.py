"""Reads the latest run back from ML Metadata into the summary a user sees and summary.json."""

import json
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata
from tfx.types import artifact_utils

COMPLETE, CACHED = "COMPLETE", "CACHED"


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))


def latest_run(store, pipeline_name: str):
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    runs = [
        c
        for c in store.get_contexts_by_type("pipeline_run")
        if pipeline and pipeline.id in {p.id for p in store.get_parent_contexts_by_context(c.id)}
    ]
    runs = runs or store.get_contexts_by_type("pipeline_run")
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


def evaluation_metrics(evaluation_uri: str) -> dict[str, float]:
    result = tfma.load_eval_result(evaluation_uri)
    metrics = {}
    for _, outputs in result.slicing_metrics[:1]:
        for sub_keys in outputs.values():
            for values in sub_keys.values():
                for name, value in values.items():
                    if "doubleValue" in value:
                        metrics[name] = float(value["doubleValue"])
    return metrics


def build_summary(metadata_path: str, pipeline_name: str, dataset_name: str) -> dict:
    store = open_store(metadata_path)
    run = latest_run(store, pipeline_name)
    if run is None:
        raise RuntimeError(f"{metadata_path}: no pipeline run recorded")
    outputs = component_outputs(store, run)
    artifacts = {}
    for component in ("StatisticsGen", "Evaluator", "Pusher"):
        artifacts.update(outputs.get(component, {}))
    summary = {
        "run_id": run.name,
        "components": component_states(store, run),
        "pushed_model_dir": None,
        "blessed": False,
        "metrics": {},
        "dataset": None,
    }
    if "ExampleStatistics" in artifacts:
        stats = artifacts["ExampleStatistics"][-1]
        splits = artifact_utils.decode_split_names(
            _custom(stats, "split_names") or stats.properties["split_names"].string_value
        )
        summary["dataset"] = dataset_summary(stats.uri, splits, dataset_name)
    if "ModelEvaluation" in artifacts:
        summary["metrics"] = evaluation_metrics(artifacts["ModelEvaluation"][-1].uri)
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
        "Components: " + ", ".join(f"{k} {v.lower()}" for k, v in summary["components"].items()),
        f"Dataset: {dataset.get('name')}  examples {dataset.get('examples')}  "
        f"identities {dataset.get('identities')}",
        "Metrics: "
        + (", ".join(f"{k}={v:.4f}" for k, v in sorted(summary["metrics"].items())) or "none"),
        f"Blessed: {summary['blessed']}",
        f"Pushed model: {summary['pushed_model_dir'] or 'not pushed'}",
    ]
    return "\n".join(lines)
