"""Reads the latest run back from ML Metadata into the summary a user sees and summary.json."""

import json
import math
import os
import textwrap

import tensorflow as tf
import tensorflow_data_validation as tfdv
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import path_utils, proto_utils

from components import keys
from components.baseline import choice
from components.evaluator import embedding_metrics as em
from components.evaluator import results
from components.evaluator.blessing import FLOOR_METRIC, Blessing
from components.example_gen.identity_split import SPLIT_BY_PROPERTY, SPLIT_NOTE_PROPERTY
from components.serving import export
from components.trainer import record
from pipeline import report

COMPLETE, CACHED = "COMPLETE", "CACHED"
# What the baseline was, by the component that supplied it.
BASELINE_NAMES = {
    choice.SERVED_BASELINE_ID: "served baseline",
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


def _last(by_type: dict, type_name: str):
    """The newest artifact of a type among a component's outputs, or None."""
    return by_type[type_name][-1] if by_type.get(type_name) else None


def _custom(artifact, name, default=None):
    if name not in artifact.custom_properties:
        return default
    value = artifact.custom_properties[name]
    return value.string_value if value.HasField("string_value") else value.int_value


def dataset_summary(
    statistics_uri: str, split_names: list[str], name: str, disjoint: bool = False
) -> dict:
    """Examples and identities per split; `disjoint` (split by identity): no identity is in two
    splits, so the identities add up."""
    counts, identities = {}, {}
    for split in split_names:
        stats = tfdv.load_stats_binary(
            os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
        )
        dataset = stats.datasets[0]
        counts[split] = int(dataset.num_examples)
        for feature in dataset.features:
            if feature.path.step == [keys.LABEL]:
                identities[split] = int(feature.string_stats.unique)
    return {
        "name": name,
        "examples": counts,
        "identities": sum(identities.values()) if disjoint else max(identities.values(), default=0),
        "identities_per_split": identities,
    }


def eval_split(store, run_context, examples=None) -> dict:
    """How ExampleGen made the eval split: by identity (the metrics are open-set: identities
    never seen in training), by image, or IDX files. From its recorded output_config and what
    its Examples artifact says it did (a split by identity falls back to one by image on
    folders with too few identities; components/example_gen/identity_split.py)."""
    made = _custom(examples, SPLIT_BY_PROPERTY) if examples is not None else None
    note = (_custom(examples, SPLIT_NOTE_PROPERTY) if examples is not None else "") or ""
    for execution in store.get_executions_by_context(run_context.id):
        config = execution.custom_properties.get("output_config")
        if _component_of(store, execution) != "ExampleGen" or config is None:
            continue
        output = proto_utils.json_to_proto(config.string_value, example_gen_pb2.Output())
        if not output.split_config.splits:
            return {"split_by": "files", "open_set": None, "note": "the dataset's own files"}
        if output.split_config.partition_feature_name and made != "image":
            found = "open-set: eval identities never appear in training"
            return {"split_by": "identity", "open_set": True, "note": _joined(found, note)}
        found = "closed-set: eval holds new images of identities seen in training"
        return {"split_by": "image", "open_set": False, "note": note or found}
    return {}


def _joined(first: str, then: str) -> str:
    return f"{first}; {then}" if then else first


def baseline_name(components: dict) -> str:
    """'served baseline', 'latest blessed baseline' or 'baseline', from the run's components."""
    return next((BASELINE_NAMES[c] for c in components if c in BASELINE_NAMES), "baseline")


def blessing_reasons(
    evaluation_uri: str,
    blessing: Blessing,
    metrics: dict,
    baseline: dict,
    baseline_kind: str = "baseline",
) -> list:
    """Why the model was or was not blessed, in words: each gate with its value and the
    Evaluator's verdict (TFMA's validation result; nothing is judged again here)."""
    failures = results.failed_gates(evaluation_uri)
    failed = {(f.metric_key.name, f.metric_key.is_diff) for f in failures}
    reasons = []
    for failure in failures:
        name = failure.metric_key.name + (
            " change vs baseline" if failure.metric_key.is_diff else ""
        )
        threshold = failure.metric_threshold
        kind = "change threshold" if threshold.HasField("change_threshold") else "lower bound"
        value_text = f"{failure.metric_value.double_value.value:.4f}"
        detail = f": {failure.message}" if failure.message else ""
        reasons.append(f"{name} = {value_text} fails the {kind}{detail}")
    metric = blessing.gating_metric
    value = metrics.get(metric)
    if value is not None and blessing.lower_bound is not None:
        verdict = "<" if (metric, False) in failed else ">="
        reasons.append(f"{metric} = {value:.4f} {verdict} lower bound {blessing.lower_bound}")
    reasons += floor_reasons(blessing, metrics, failed)
    if value is not None and metric in baseline:
        change = value - baseline[metric]
        verdict = "beyond" if (metric, True) in failed else "within"
        reasons.append(
            f"{metric}: candidate {value:.4f} vs {baseline_kind} "
            f"{baseline[metric]:.4f} (change {change:+.4f}, {verdict} the allowed "
            f"regression {blessing.max_regression})"
        )
    elif value is not None:
        reasons.append(f"no {baseline_kind} yet: judged by the thresholds only")
    return reasons


def serving_summary(outputs: dict) -> dict | None:
    """The pushed model's calibration.json (threshold, FAR, gallery...), if one was written."""
    served = outputs.get("ServingModel", {}).get("Model")
    if not served:
        return None
    return export.read_calibration(path_utils.serving_model_dir(served[-1].uri))


def format_serving(serving: dict | None) -> str:
    if not serving:
        return "Serving: no serving model (not blessed)"
    threshold = serving["threshold"]
    text = (
        f"Serving: verify threshold {'none' if threshold is None else f'{threshold:.4f}'} at FAR "
        f"{serving['far']:g} (VAL {serving.get('val_at_far') or 0:.4f}); identify gallery "
        f"{serving['gallery_size']} entries of {serving['gallery_identities']} identities"
    )
    return "\n".join([text, *(f"  - {note}" for note in serving.get("notes", []))])


def floor_reasons(blessing: Blessing, metrics: dict, failed: set) -> list[str]:
    """The floor's verdict: the model against the raw-pixel reference on the eval split."""
    reference, gain = metrics.get(em.REFERENCE_MAP_AT_R), metrics.get(em.MAP_AT_R_GAIN)
    if blessing.floor_gain is None or reference is None or gain is None:
        return []
    value = metrics.get(FLOOR_METRIC, math.nan)
    ok = (em.MAP_AT_R_GAIN, False) not in failed
    verdict = "learned more than" if ok else "does not beat"
    return [
        f"{FLOOR_METRIC} = {value:.4f} vs {reference:.4f} for raw pixels (gain {gain:+.4f}, "
        f"{'>=' if ok else '<'} floor margin {blessing.floor_margin}): the model {verdict} "
        "the no-learning reference"
    ]


def component_count(metadata_path: str, pipeline_name: str, component: str) -> str:
    """A count for the console line of a finished component of the latest run, or ''."""
    store = open_store(metadata_path)
    run = latest_run(store, pipeline_name)
    outputs = component_outputs(store, run).get(component, {}) if run else {}
    if component == "StatisticsGen" and "ExampleStatistics" in outputs:
        stats = outputs["ExampleStatistics"][-1]
        splits = artifact_utils.decode_split_names(stats.properties["split_names"].string_value)
        counts = dataset_summary(stats.uri, splits, "")["examples"]
        per_split = ", ".join(f"{split} {count}" for split, count in counts.items())
        return f"{sum(counts.values())} examples: {per_split}"
    if "ModelEvaluation" in outputs:
        metrics, _ = results.evaluation_metrics(outputs["ModelEvaluation"][-1].uri)
        blessed = outputs.get("ModelBlessing") and _custom(outputs["ModelBlessing"][-1], "blessed")
        return f"{len(metrics)} metrics, {'blessed' if blessed else 'not blessed'}"
    if "PushedModel" in outputs:
        return "pushed" if _custom(outputs["PushedModel"][-1], "pushed", 0) else "not pushed"
    return ""


def build_summary(
    metadata_path: str, pipeline_name: str, dataset_name: str, blessing: Blessing | None = None
) -> dict:
    store = open_store(metadata_path)
    run = latest_run(store, pipeline_name)
    if run is None:
        raise RuntimeError(f"{metadata_path}: no pipeline run recorded")
    outputs = component_outputs(store, run)
    artifacts = {}
    for component in ("StatisticsGen", "Trainer", "EmbeddingReport", "Evaluator", "Pusher"):
        artifacts.update(outputs.get(component, {}))
    blessing = blessing or Blessing()
    summary = {
        "run_id": run.name,
        "components": component_states(store, run),
        "pushed_model_dir": None,
        "blessed": False,
        "metrics": {},
        "baseline_metrics": {},
        "blessing": blessing.to_config(),
        "blessing_reasons": [],
        "dataset": None,
        "eval_split": eval_split(store, run, _last(outputs.get("ExampleGen", {}), "Examples")),
        "training": None,
        "artifacts": {},
        "serving": serving_summary(outputs),
    }
    if "ExampleStatistics" in artifacts:
        stats = artifacts["ExampleStatistics"][-1]
        splits = artifact_utils.decode_split_names(stats.properties["split_names"].string_value)
        disjoint = bool(summary["eval_split"].get("open_set"))
        summary["dataset"] = dataset_summary(stats.uri, splits, dataset_name, disjoint)
    if "ModelEvaluation" in artifacts:
        uri = artifacts["ModelEvaluation"][-1].uri
        summary["metrics"], summary["baseline_metrics"] = results.evaluation_metrics(uri)
        summary["blessing_reasons"] = blessing_reasons(
            uri,
            blessing,
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
    if "ModelRun" in artifacts:
        summary["training"] = record.read_training_record(artifacts["ModelRun"][-1].uri)
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


def _selection_lines(training: dict | None) -> list[str]:
    sentence = report.kept_epoch_sentence(training)
    return [sentence] if sentence else []


def format_summary(summary: dict) -> str:
    """The short summary the console ends with (every detail is in summary.json)."""
    dataset = summary.get("dataset") or {}
    shown = [
        name
        for name in (em.PRECISION_AT_1, em.MAP_AT_R, em.REFERENCE_MAP_AT_R, em.ROC_AUC, em.EER)
        if name in summary["metrics"]
    ]
    lines = [
        f"Run {summary['run_id']}: dataset {dataset.get('name')}, examples "
        f"{dataset.get('examples')}, identities {dataset.get('identities')}",
        f"Metrics on the eval split ({(summary.get('eval_split') or {}).get('note', 'unknown')}): "
        + (", ".join(f"{k}={summary['metrics'][k]:.4f}" for k in shown) or "none"),
        *_selection_lines(summary.get("training")),
        f"Blessed: {summary['blessed']}",
        *(
            line
            for reason in summary.get("blessing_reasons", [])
            for line in textwrap.wrap(
                reason, width=100, initial_indent="  - ", subsequent_indent="    "
            )
        ),
        f"Pushed model: {summary['pushed_model_dir'] or 'not pushed'}",
        format_serving(summary.get("serving")),
    ]
    return "\n".join(lines)
