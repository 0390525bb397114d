"""What the compiled KFP v2 spec needs beyond what TFX writes: our entrypoint and artifact
types, the steps' resources, the S3 secret, the uncached baseline step, and the files.

Each function patches the PipelineJob dict that KubeflowV2DagRunner returns (or the
components before it compiles); kubeflow_runner.py applies them in order.
"""

import json
import os

from components.baseline import choice
from pipeline.kubeflow_settings import Resources

ENTRYPOINT = ["python", "-m", "pipeline.container_entrypoint"]
# The environment pipeline.filesystems reads, each a key of the `--s3-secret` Kubernetes secret.
S3_SECRET_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "S3_ENDPOINT",
    "S3_USE_HTTPS",
    "S3_VERIFY_SSL",
)


def resource_spec(resources: Resources):
    """The KFP ResourceSpec that KubeflowV2DagRunner copies from a component's platform_config.

    Each amount is both the request and the limit; memory is in GB (KFP writes it as '<n>G').
    """
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=resources.cpu,
        cpu_request=resources.cpu,
        memory_limit=resources.memory_gb,
        memory_request=resources.memory_gb,
    )
    if resources.gpus:
        spec.accelerator.type = resources.gpu_type
        spec.accelerator.count = resources.gpus
    return spec


def give_resources(pipeline, resources: dict[str, Resources]) -> None:
    """Each named component gets its ResourceSpec as its platform config."""
    by_id = {component.id: component for component in pipeline.components}
    for name, amounts in resources.items():
        by_id[name].with_platform_config(resource_spec(amounts))


def class_path(artifact_type) -> str:
    return f"{artifact_type.__module__}.{artifact_type.__qualname__}"


def artifact_types(component) -> dict:
    """{"inputs"|"outputs": {key: TFX artifact class path}} of a component, for the entrypoint."""
    return {
        "inputs": {key: class_path(channel.type) for key, channel in component.inputs.items()},
        "outputs": {key: class_path(channel.type) for key, channel in component.outputs.items()},
    }


def use_our_entrypoint(spec: dict, pipeline) -> None:
    """Every container runs pipeline.container_entrypoint, told its artifacts' TFX classes.

    TFX writes its own entrypoint's command; the arguments stay as TFX wrote them, ours first.
    """
    by_id = {component.id: component for component in pipeline.components}
    for label, executor in spec["deploymentSpec"]["executors"].items():
        if "container" not in executor:
            continue
        component = by_id[label.removesuffix("_executor")]
        container = executor["container"]
        container["command"] = list(ENTRYPOINT)
        types = json.dumps(artifact_types(component), sort_keys=True)
        container["args"] = ["--artifact_types", types, *container["args"]]


def uncache_served_baseline(spec: dict) -> None:
    """What is served changes between runs: ServedBaseline must run every time."""
    tasks = spec["root"]["dag"]["tasks"]
    if choice.SERVED_BASELINE_ID in tasks:
        tasks[choice.SERVED_BASELINE_ID]["cachingOptions"] = {}


def s3_secret_platform_spec(spec: dict, secret: str) -> dict:
    """KFP's Kubernetes PlatformSpec: every container gets S3_SECRET_KEYS from `secret`.

    The format of kfp-kubernetes' use_secret_as_env, which the open-source KFP 2 backend reads;
    the spec names the secret, the values stay in the cluster.
    """
    key_to_env = [{"secretKey": key, "envVar": key} for key in S3_SECRET_KEYS]
    executors = {
        label: {"secretAsEnv": [{"secretName": secret, "keyToEnv": key_to_env}]}
        for label, executor in spec["deploymentSpec"]["executors"].items()
        if "container" in executor
    }
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}


def write_spec(job: dict, path: str) -> None:
    """YAML: the PipelineSpec alone (for kfp.Client / the UI). JSON: the whole PipelineJob."""
    import yaml

    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w") as f:
        if path.endswith(".json"):
            json.dump(job, f, indent=2, sort_keys=True)
            return
        spec = job["pipelineSpec"]
        f.write(
            f"# PIPELINE DEFINITION\n# Name: {spec['pipelineInfo']['name']}\n"
            f"# Compiled by siamese-tfx with {spec.get('sdkVersion', 'tfx')}\n"
        )
        yaml.safe_dump(spec, f, sort_keys=True)
        if "platformSpec" in job:
            f.write("---\n")
            yaml.safe_dump(job["platformSpec"], f, sort_keys=True)
