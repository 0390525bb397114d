"""pipeline.container_entrypoint on executor inputs shaped as open-source KFP's driver shapes them.

system.* titles, empty instance_schema, inputs without split_names; a real step (ServedBaseline) run
as its pod runs it, exiting 0 with its outputs and metadata written, and 1 on an error; a
failed attempt leaves no directory markers under its outputs, and a retry starts without them.
"""

import json
import os
import subprocess
import sys

import kfp_driver
import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.container import (
    kubeflow_v2_entrypoint_utils,
    kubeflow_v2_run_executor,
)
from tfx.types import standard_artifacts

from components.baseline.served_baseline import ServedBaseline
from components.baseline.served_baseline_test import save_model
from pipeline import container_entrypoint, filesystems

STANDARD = "tfx.types.standard_artifacts."


def oss_input(tmp_path) -> dict:
    examples = tmp_path / "examples"
    for split in ("train", "eval"):
        (examples / f"Split-{split}").mkdir(parents=True)
    return {
        "inputs": {
            "artifacts": {
                # Resolved from ML Metadata: a system title, no split_names in the metadata.
                "examples": {
                    "artifacts": [{"uri": str(examples), "type": {"schemaTitle": "system.Dataset"}}]
                },
                "model": {
                    "artifacts": [{"name": "7", "uri": "/m", "type": {"instanceSchema": ""}}]
                },
            }
        },
        "outputs": {
            "artifacts": {
                "pushed_model": {
                    "artifacts": [{"uri": "/p", "type": {"schemaTitle": "system.Model"}}]
                },
                "blessing": {
                    "artifacts": [{"uri": "/b", "type": {"schemaTitle": "system.Artifact"}}]
                },
                # Added by the OSS driver (KFP >= 2.5) to every task for the launcher's logs.
                "executor-logs": {
                    "artifacts": [
                        {
                            "name": "executor-logs",
                            "uri": "/l",
                            "type": {"schemaTitle": "system.Artifact"},
                        }
                    ]
                },
            },
            "outputFile": str(tmp_path / "executor_output.json"),
        },
    }


def parsed(executor_input: dict, side: str) -> dict:
    """TFX's own parser on the normalised input: key -> its TFX artifacts."""
    proto = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
    side = proto.inputs.artifacts if side == "inputs" else proto.outputs.artifacts
    return kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(side)


def test_system_titles_and_empty_schemas_become_the_declared_tfx_classes(tmp_path):
    declared = {"inputs": {"model": STANDARD + "Model"}, "outputs": {}}
    normalised = container_entrypoint.normalise_executor_input(oss_input(tmp_path), declared, None)
    inputs, outputs = parsed(normalised, "inputs"), parsed(normalised, "outputs")
    (examples,) = inputs["examples"]
    assert type(examples) is standard_artifacts.Examples
    assert json.loads(examples.split_names) == ["eval", "train"]  # From its Split-* folders.
    assert type(inputs["model"][0]) is standard_artifacts.Model
    # Undeclared: system.Model under pushed_model is a PushedModel, system.Artifact by its key.
    assert type(outputs["pushed_model"][0]) is standard_artifacts.PushedModel
    assert type(outputs["blessing"][0]) is standard_artifacts.ModelBlessing
    assert all(a["name"] for a in normalised["inputs"]["artifacts"]["examples"]["artifacts"])
    assert set(outputs) == {"pushed_model", "blessing"}  # KFP's executor-logs is not TFX's.


def test_declared_types_win_and_tfx_inputs_spec_is_read(tmp_path):
    spec = {"artifacts": {"model": {"artifactType": {"instanceSchema": "title: tfx.Model\n"}}}}
    assert container_entrypoint.declared_input_types(json.dumps(spec)) == {
        "model": STANDARD + "Model"
    }
    executor_input = oss_input(tmp_path)
    executor_input["inputs"]["artifacts"]["examples"]["artifacts"][0]["metadata"] = {
        "split_names": '["train"]'
    }
    declared = {"outputs": {"blessing": STANDARD + "ModelBlessing"}}
    normalised = container_entrypoint.normalise_executor_input(
        executor_input, declared, json.dumps(spec)
    )
    (examples,) = parsed(normalised, "inputs")["examples"]
    assert examples.split_names == '["train"]'  # What the driver gave is kept.
    # With the outputs declared, any other output key is the orchestrator's, not the step's.
    assert set(normalised["outputs"]["artifacts"]) == {"blessing"}


def run_entrypoint(args: list[str], workdir) -> subprocess.CompletedProcess:
    env = {**os.environ, **kfp_driver.image_env()}
    command = [sys.executable, "-m", "pipeline.container_entrypoint", *args]
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_step_runs_as_its_pod_and_exits_0_with_its_outputs_written(tmp_path):
    serving = tmp_path / "serving"
    save_model(str(serving / "3"), 3.0)
    executor = ServedBaseline.EXECUTOR_SPEC.executor_class
    uri = str(tmp_path / "out" / "model")
    invocation = {
        "inputs": {"parameterValues": {"serving_dir": str(serving)}},
        "outputs": {
            "artifacts": {
                "model": {
                    "artifacts": [{"name": "", "uri": uri, "type": {"schemaTitle": "system.Model"}}]
                }
            },
            "outputFile": str(tmp_path / "out" / "executor_output.json"),
        },
    }
    args = ["--executor_class_path", f"{executor.__module__}.{executor.__name__}"]
    args += ["--json_serialized_invocation_args", json.dumps(invocation)]
    # As the spec has it: with the inputs spec, TFX reads parameterValues (schema 2.1).
    inputs_spec = {"parameters": {"serving_dir": {"parameterType": "STRING"}}}
    args += ["--json_serialized_inputs_spec_args", json.dumps(inputs_spec)]
    args += ["--artifact_types", json.dumps({"outputs": {"model": STANDARD + "Model"}})]
    process = run_entrypoint(args, tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "pure virtual method called" not in process.stderr
    with open(invocation["outputs"]["outputFile"]) as f:
        (artifact,) = json.load(f)["artifacts"]["model"]["artifacts"]
    assert artifact["uri"] == uri
    assert artifact["metadata"]["found"] == 1 and artifact["metadata"]["served_version"] == "3"
    assert os.path.isfile(os.path.join(uri, "Format-Serving", "saved_model.pb"))

    args[1] = "components.baseline.no_such_module.Executor"
    failed = run_entrypoint(args, tmp_path)
    assert failed.returncode == 1
    assert "no_such_module" in failed.stderr


def test_a_failed_attempt_leaves_no_directory_markers_and_a_retry_starts_without_them(
    monkeypatch,
):
    # A bucket as a dict (key -> bytes), cleaned by a stand-in of the S3 listing and deletes.
    bucket = {
        "root/run/Trainer/model/Format-Serving/": b"",  # Left by an attempt killed mid-write.
        "root/run/Trainer/model/Format-Serving/variables/": b"",
        "root/run/Trainer/model/Format-Serving/fingerprint.pb": b"x",
        "root/run/Transform/transform_graph/": b"",  # Not this step's output.
    }

    def remove_directory_markers(uri: str) -> list[str]:
        prefix = uri.removeprefix("s3://b/").rstrip("/") + "/"
        gone = [k for k, v in bucket.items() if k.startswith(prefix) and k.endswith("/") and not v]
        for key in gone:
            del bucket[key]
        return [f"s3://b/{key}" for key in gone]

    seen = {}

    def crashing_executor(args, beam_args):
        seen["markers at the start"] = sorted(k for k in bucket if k.endswith("/"))
        bucket["root/run/Trainer/model/Format-Serving/assets/"] = b""  # As tf.io.gfile does.
        raise RuntimeError("out of memory mid-write")

    monkeypatch.setattr(container_entrypoint, "remove_directory_markers", remove_directory_markers)
    monkeypatch.setattr(kubeflow_v2_run_executor, "_run_executor", crashing_executor)
    monkeypatch.setattr(filesystems, "register", lambda: None)  # No tensorflow-io here.
    model = {"uri": "s3://b/root/run/Trainer/model", "type": {"schemaTitle": "system.Model"}}
    invocation = {
        "inputs": {},
        "outputs": {"artifacts": {"model": {"artifacts": [model]}}, "outputFile": "/unused"},
    }
    argv = ["--executor_class_path", "components.trainer.executor.Executor"]
    argv += ["--json_serialized_invocation_args", json.dumps(invocation)]
    argv += ["--artifact_types", json.dumps({"outputs": {"model": STANDARD + "Model"}})]
    with pytest.raises(RuntimeError, match="out of memory mid-write"):
        container_entrypoint.run(argv)
    assert seen["markers at the start"] == ["root/run/Transform/transform_graph/"]
    assert sorted(bucket) == [
        "root/run/Trainer/model/Format-Serving/fingerprint.pb",
        "root/run/Transform/transform_graph/",
    ]
