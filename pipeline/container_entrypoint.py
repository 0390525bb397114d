"""The container entrypoint of every compiled step: TFX's kubeflow_v2_run_executor, made to run on
open-source Kubeflow Pipelines.

`python -m pipeline.container_entrypoint --executor_class_path ... --json_serialized_invocation_args
{{$}} [--json_serialized_inputs_spec_args ...] [--artifact_types JSON] [beam args]`

TFX 1.16's entrypoint expects what Vertex AI's launcher hands it. The open-source KFP v2 driver
differs, and this module bridges the gap before and after delegating to TFX:

- artifact types arrive as `system.*` schema titles (system.Dataset, system.Model for Model and
  PushedModel, system.Artifact, ...), with an empty instance_schema, or with none at all. Each
  artifact's type is replaced by the TFX class the component declares for that input or output
  key: `--artifact_types` (written into the spec by pipeline.kubeflow_runner), else the inputs
  spec TFX compiles in, else a guess from the key and the system title. With the right class,
  metadata such as split_names become properties again; an Examples-like input without
  split_names gets them back from its Split-* folders.
- artifacts without a name get one, so TFX's hashed ids (the Evaluator's blessing) work.
- TensorFlow writes zero-byte `dir/` marker objects on gs:// and s3://; the KFP launcher downloads
  them as files, and then no folder can be made beneath them. They are deleted from every output:
  before the step's work (what a crashed earlier attempt of the same task left under the same
  URIs), and after it, whether it succeeded or failed.
- s3:// is registered (pipeline.filesystems) before anything runs, when the step mentions it.
- TF with tensorflow-io can abort at interpreter shutdown ("pure virtual method called") after the
  work is done: the process ends with os._exit once the outputs and executor_output.json are
  written, 0 on success, 1 on an error (its traceback printed).
"""

import argparse
import json
import logging
import os
import sys
import traceback

from pipeline import filesystems

# What TFX knows by title; other titles are import paths (TFX's own convention).
SYSTEM_TITLES = {
    "system.Dataset": "tfx.types.standard_artifacts.Examples",
    "system.Model": "tfx.types.standard_artifacts.Model",
    "system.Statistics": "tfx.types.standard_artifacts.ExampleStatistics",
    "system.Metrics": "tfx.types.standard_artifacts.ModelEvaluation",
}
# system.Model and system.Artifact are ambiguous: the standard TFX key names settle them.
KEY_CLASSES = {
    "pushed_model": "tfx.types.standard_artifacts.PushedModel",
    "model": "tfx.types.standard_artifacts.Model",
    "baseline_model": "tfx.types.standard_artifacts.Model",
    "model_run": "tfx.types.standard_artifacts.ModelRun",
    "blessing": "tfx.types.standard_artifacts.ModelBlessing",
    "model_blessing": "tfx.types.standard_artifacts.ModelBlessing",
    "evaluation": "tfx.types.standard_artifacts.ModelEvaluation",
    "examples": "tfx.types.standard_artifacts.Examples",
    "transformed_examples": "tfx.types.standard_artifacts.Examples",
    "statistics": "tfx.types.standard_artifacts.ExampleStatistics",
    "schema": "tfx.types.standard_artifacts.Schema",
    "anomalies": "tfx.types.standard_artifacts.ExampleAnomalies",
    "transform_graph": "tfx.types.standard_artifacts.TransformGraph",
}
SPLIT_PREFIX = "Split-"
# Outputs that open-source KFP's driver (2.5 and later, log publishing on by default) adds to
# every task for its launcher, typed system.Artifact; the launcher uploads them from its own copy
# of the executor input, and TFX would fail on the abstract Artifact type.
KFP_OWN_OUTPUTS = ("executor-logs",)


def class_path_of_title(title: str) -> str:
    from tfx.orchestration.kubeflow.v2 import compiler_utils

    title = SYSTEM_TITLES.get(title, title)
    return compiler_utils.TITLE_TO_CLASS_PATH.get(title, title)


def type_title(artifact_type: dict) -> str | None:
    """The title in a KFP ArtifactTypeSchema dict (schemaTitle or instanceSchema), or None."""
    import yaml

    if artifact_type.get("schemaTitle"):
        return artifact_type["schemaTitle"]
    schema = yaml.safe_load(artifact_type.get("instanceSchema") or "") or {}
    return schema.get("title") if isinstance(schema, dict) else None


def declared_input_types(inputs_spec_json: str | None) -> dict[str, str]:
    """Input key -> class path from TFX's --json_serialized_inputs_spec_args."""
    if not inputs_spec_json:
        return {}
    artifacts = json.loads(inputs_spec_json).get("artifacts", {})
    found = {}
    for key, spec in artifacts.items():
        title = type_title(spec.get("artifactType", {}))
        if title and not title.startswith("system."):
            found[key] = class_path_of_title(title)
    return found


def guessed_class_path(key: str, artifact_type: dict) -> str:
    """The class for an artifact nobody declared: its key, else its title, else Artifact."""
    if key in KEY_CLASSES:
        return KEY_CLASSES[key]
    title = type_title(artifact_type)
    if title and title != "system.Artifact":
        return class_path_of_title(title)
    return "tfx.types.artifact.Artifact"


def recover_split_names(artifact: dict, class_path: str) -> None:
    """Sets metadata.split_names from the Split-* folders when a split type arrives without it."""
    import tensorflow as tf
    from tfx.utils import import_utils

    cls = import_utils.import_class_by_path(class_path)
    metadata = artifact.setdefault("metadata", {})
    if "split_names" not in (getattr(cls, "PROPERTIES", None) or {}) or metadata.get("split_names"):
        return
    uri = artifact.get("uri", "")
    if not uri or not tf.io.gfile.isdir(uri):
        return
    splits = sorted(
        name.rstrip("/")[len(SPLIT_PREFIX) :]
        for name in tf.io.gfile.listdir(uri)
        if name.startswith(SPLIT_PREFIX)
    )
    if splits:
        metadata["split_names"] = json.dumps(splits)


def normalise_executor_input(
    executor_input: dict, declared: dict[str, dict[str, str]], inputs_spec_json: str | None
) -> dict:
    """The executor input with TFX class paths as types, names, and split_names recovered."""
    input_types = {**declared_input_types(inputs_spec_json), **declared.get("inputs", {})}
    drop_foreign_outputs(executor_input, declared.get("outputs", {}))
    for side, types in (("inputs", input_types), ("outputs", declared.get("outputs", {}))):
        for key, artifact_list in executor_input.get(side, {}).get("artifacts", {}).items():
            for n, artifact in enumerate(artifact_list.get("artifacts", [])):
                class_path = types.get(key) or guessed_class_path(key, artifact.get("type", {}))
                artifact["type"] = {"schemaTitle": class_path}
                if not artifact.get("name"):
                    artifact["name"] = artifact.get("uri") or f"{side}/{key}/{n}"
                if side == "inputs":
                    recover_split_names(artifact, class_path)
    return executor_input


def drop_foreign_outputs(executor_input: dict, declared_outputs: dict[str, str]) -> None:
    """Removes outputs that are not the component's: KFP's own, and, when the component's
    outputs are declared, any other key (TFX would have to type them)."""
    outputs = executor_input.get("outputs", {}).get("artifacts", {})
    for key in list(outputs):
        if key in KFP_OWN_OUTPUTS or (declared_outputs and key not in declared_outputs):
            del outputs[key]


# --- Output clean-up ----------------------------------------------------------------------------


def remove_directory_markers(uri: str) -> list[str]:
    """Deletes zero-byte `.../` objects under a gs:// or s3:// uri; returns what it deleted."""
    scheme, _, rest = uri.partition("://")
    if scheme not in ("s3", "gs"):
        return []  # Local folders are folders.
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.rstrip("/") + "/"
    removed = []
    if scheme == "s3":
        client = filesystems.s3_client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/") and item["Size"] == 0:
                    client.delete_object(Bucket=bucket, Key=item["Key"])
                    removed.append(f"s3://{bucket}/{item['Key']}")
    else:
        from google.cloud import storage

        for blob in storage.Client().list_blobs(bucket, prefix=prefix):
            if blob.name.endswith("/") and blob.size == 0:
                blob.delete()
                removed.append(f"gs://{bucket}/{blob.name}")
    return removed


def output_uris(executor_input: dict) -> list[str]:
    artifacts = executor_input.get("outputs", {}).get("artifacts", {})
    return [a["uri"] for group in artifacts.values() for a in group.get("artifacts", [])]


def clean_outputs(executor_input: dict) -> None:
    """Deletes the directory markers under every output URI of the step."""
    for uri in output_uris(executor_input):
        for marker in remove_directory_markers(uri):
            logging.info("removed directory marker %s", marker)


# --- Running ------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our --artifact_types, then TFX's flags; the rest are Beam's."""
    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--artifact_types", default="{}")
    own, rest = ours.parse_known_args(argv)
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    args, beam_args = kubeflow_v2_run_executor._parse_flags(rest)
    args.artifact_types = own.artifact_types
    return args, beam_args


def run(argv: list[str]) -> None:
    """Normalises the executor input, runs TFX's entrypoint; cleans the outputs' markers before
    (a failed earlier attempt's) and after it, on success or failure."""
    filesystems.register_for(*argv)
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    args, beam_args = parse_args(argv)
    executor_input = normalise_executor_input(
        json.loads(args.json_serialized_invocation_args),
        json.loads(args.artifact_types),
        getattr(args, "json_serialized_inputs_spec_args", None),
    )
    args.json_serialized_invocation_args = json.dumps(executor_input)
    clean_outputs(executor_input)
    try:
        kubeflow_v2_run_executor._run_executor(args, beam_args)
    finally:
        clean_outputs(executor_input)


def main(argv: list[str] | None = None) -> None:
    """Runs the step and ends the process at once: 0 when done, 1 on an error."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    code = 0
    try:
        run(sys.argv[1:] if argv is None else argv)
    except BaseException:  # noqa: B036 (the process ends here either way)
        traceback.print_exc()
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
