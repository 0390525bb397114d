"""Compiles create_pipeline into a Kubeflow Pipelines v2 spec: our image, a GPU Trainer.

`siamese-tfx compile kubeflow --image ... --output pipeline.yaml` builds the same DAG as
`siamese-tfx run` with KubeflowV2DagRunner. Every step runs `python -m
pipeline.container_entrypoint` (TFX's kubeflow_v2_run_executor made to take what the open-source
KFP driver hands it) in `--image` (see Dockerfile), told each artifact's TFX class with
`--artifact_types`. The baseline is the served model (`--baseline served`), so the default spec
has container executors only, which open-source KFP runs; `--baseline resolver` brings back
TFX's LatestBlessedModelResolver, whose `resolver` executors only Vertex AI runs. The Trainer
asks for GPUs, Transform and Evaluator for CPU and memory. The output is a
PipelineSpec (`.yaml`, what `kfp.Client` and the KFP UI upload) or a PipelineJob (`.json`, as
TFX writes it for Vertex AI Pipelines).

Paths are checked before compiling: pods cannot see this machine, so the pipeline root, the
data and the serving dir must be buckets (gs:// or s3://). The data format is given with
--data-format rather than detected: compiling must not need the bucket or credentials.
"""

import argparse
import json
import logging
import math
import os
import re
import sys
from dataclasses import dataclass, field

from components.baseline import choice
from components.evaluator.blessing import Blessing
from components.example_gen.split_modes import check_split_by
from components.serving.settings import ServingSettings
from components.trainer.hparams import HParams
from pipeline import configs
from pipeline import options as shared_options

DATA_FORMATS = ("idx", "folder", "tfrecord")  # components.example_gen.sources, less 'digits'.
REMOTE_SCHEMES = ("gs", "s3")
BEAM_RUNNERS = {
    "direct": "DirectRunner",
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
}
DEFAULT_GPU_TYPE = "nvidia.com/gpu"
# Components given resources, and their defaults: (cpu cores, memory in GB).
RESOURCE_DEFAULTS = {"Trainer": (4.0, 16.0), "Transform": (4.0, 16.0), "Evaluator": (2.0, 8.0)}
OUTPUT_EXTENSIONS = (".json", ".yaml", ".yml")
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
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

_MEMORY_UNITS = {
    "": 1.0,
    "G": 1.0,
    "M": 1e-3,
    "K": 1e-6,
    "T": 1e3,
    "Gi": 2**30 / 1e9,
    "Mi": 2**20 / 1e9,
    "Ki": 2**10 / 1e9,
    "Ti": 2**40 / 1e9,
}
_GPU_TYPE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class KubeflowConfigError(ValueError):
    """An argument would compile into a pipeline that cannot run; the message says why."""


# --- Argument types and checks ----------------------------------------------------------------


def parse_cpu(text: str) -> float:
    """Kubernetes CPU quantity ('4', '0.5', '500m') as cores."""
    value = text.strip()
    try:
        cores = float(value[:-1]) / 1000 if value.endswith("m") else float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a CPU amount (e.g. 4, 0.5, 500m)"
        ) from None
    if not (cores > 0 and math.isfinite(cores)):
        raise argparse.ArgumentTypeError(f"CPU must be positive, got '{text}'")
    return cores


def parse_memory(text: str) -> float:
    """Memory ('16Gi', '16G', '512Mi', or a plain number of GB) in GB, as KFP's spec wants."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]i?)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a memory amount (e.g. 16Gi, 16G, 512Mi)")
    gigabytes = float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""]
    if not gigabytes > 0:
        raise argparse.ArgumentTypeError(f"memory must be positive, got '{text}'")
    return round(gigabytes, 6)


def parse_gpus(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of GPUs") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"--gpus must be >= 0, got {count}")
    return count


def check_bucket_path(flag: str, value: str) -> str:
    """Returns `value` (trailing slash removed) if pods can reach it; raises otherwise."""
    value = value.strip()
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme == "minio":
        raise KubeflowConfigError(
            f"{flag} {value}: TensorFlow does not understand minio:// paths. Use "
            "s3://BUCKET/PATH and point the pods at MinIO with the S3_ENDPOINT, S3_USE_HTTPS=0, "
            "S3_VERIFY_SSL=0, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables "
            "(see kubeflow/README.md)"
        )
    if scheme in ("", "file"):
        raise KubeflowConfigError(
            f"{flag} {value}: a local path, which the pipeline's pods cannot see. "
            "Use a bucket: gs://BUCKET/PATH or s3://BUCKET/PATH"
        )
    if scheme not in REMOTE_SCHEMES:
        raise KubeflowConfigError(
            f"{flag} {value}: unsupported scheme {scheme}://; use gs:// or s3://"
        )
    if not value.split("://", 1)[1].strip("/"):
        raise KubeflowConfigError(f"{flag} {value}: no bucket name")
    return value.rstrip("/")


def check_image(image: str) -> str:
    image = image.strip()
    if not image or any(c.isspace() for c in image):
        raise KubeflowConfigError(f"--image '{image}': not a container image reference")
    last = image.rsplit("/", 1)[-1]
    if "@" not in image and (":" not in last or last.endswith(":latest")):
        logging.warning(
            "--image %s: no tag or a moving 'latest' tag; a fixed tag or @sha256 digest keeps "
            "runs reproducible and KFP's cache honest",
            image,
        )
    return image


def check_gpu_type(gpu_type: str) -> str:
    if not _GPU_TYPE.match(gpu_type):
        raise KubeflowConfigError(
            f"--gpu-type {gpu_type}: expected a Kubernetes extended resource name such as "
            f"{DEFAULT_GPU_TYPE} (Vertex AI names like NVIDIA_TESLA_T4 are not for Kubeflow)"
        )
    return gpu_type


def check_output(path: str) -> str:
    if not path.endswith(OUTPUT_EXTENSIONS):
        raise KubeflowConfigError(
            f"--output {path}: must end with .yaml (a PipelineSpec, what kfp.Client and the KFP UI "
            "upload) or .json (a PipelineJob, as TFX writes it for Vertex AI Pipelines)"
        )
    return path


# --- Options and compiling --------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    cpu: float
    memory_gb: float
    gpus: int = 0
    gpu_type: str = DEFAULT_GPU_TYPE


@dataclass
class KubeflowCompile:
    image: str
    pipeline_root: str
    data: str
    data_format: str
    serving_dir: str
    output: str
    hparams: HParams
    resources: dict[str, Resources] = field(default_factory=dict)
    beam_runner: str = "direct"
    beam_args: list[str] = field(default_factory=list)
    baseline: str = configs.DEFAULT_BASELINE
    pipeline_name: str = configs.PIPELINE_NAME
    blessing: Blessing = field(default_factory=Blessing)
    report_examples: int = configs.DEFAULT_REPORT_EXAMPLES
    eval_fraction: float = configs.DEFAULT_EVAL_FRACTION
    split_by: str = ""  # "image" or "identity"; "" = the data format's default
    serving: ServingSettings = field(default_factory=ServingSettings)
    enable_cache: bool = True
    s3_secret: str | None = None  # Kubernetes secret whose S3_SECRET_KEYS become env vars.

    def validate(self) -> None:
        """Checks everything a pod will need; raises KubeflowConfigError with the reason."""
        self.image = check_image(self.image)
        self.pipeline_root = check_bucket_path("--pipeline-root", self.pipeline_root)
        self.data = check_bucket_path("--data", self.data)
        self.serving_dir = check_bucket_path("--serving-dir", self.serving_dir)
        check_output(self.output)
        if self.serving.gallery:
            check_bucket_path("--gallery", self.serving.gallery)
        if self.data_format not in DATA_FORMATS:
            raise KubeflowConfigError(
                f"--data-format {self.data_format}: expected one of {', '.join(DATA_FORMATS)}"
            )
        try:
            check_split_by(self.data_format, self.split_by)
        except ValueError as error:
            raise KubeflowConfigError(str(error)) from None
        if self.baseline not in choice.BASELINES:
            raise KubeflowConfigError(
                f"--baseline {self.baseline}: expected one of {', '.join(choice.BASELINES)}"
            )
        if self.beam_runner not in BEAM_RUNNERS:
            raise KubeflowConfigError(
                f"--beam-runner {self.beam_runner}: expected one of {', '.join(BEAM_RUNNERS)}"
            )
        if self.s3_secret is not None:
            if not _SECRET_NAME.match(self.s3_secret):
                raise KubeflowConfigError(
                    f"--s3-secret {self.s3_secret}: not a Kubernetes secret name"
                )
            if self.output.endswith(".json"):
                raise KubeflowConfigError(
                    f"--s3-secret with --output {self.output}: the secret goes into the YAML "
                    "package's Kubernetes platform spec (open-source KFP); write .yaml"
                )
        if not 0.0 < self.eval_fraction < 1.0:
            raise KubeflowConfigError(
                f"--eval-fraction must be between 0 and 1, got {self.eval_fraction}"
            )
        unknown = set(self.resources) - set(RESOURCE_DEFAULTS)
        if unknown:
            raise KubeflowConfigError(f"no resources can be set for {sorted(unknown)}")
        for name, spec in self.resources.items():
            if spec.cpu <= 0 or spec.memory_gb <= 0 or spec.gpus < 0:
                raise KubeflowConfigError(f"{name}: cpu and memory must be > 0 and gpus >= 0")
            if spec.gpus:
                check_gpu_type(spec.gpu_type)
        if any(p.startswith("s3://") for p in (self.pipeline_root, self.data, self.serving_dir)):
            logging.warning(
                "s3:// paths need TensorFlow I/O's S3 file system in the image (TensorFlow 2.16 "
                "has none built in): see 'S3 and MinIO' in kubeflow/README.md"
            )

    def all_beam_args(self) -> list[str]:
        """The runner's flags, then the user's (Beam keeps the last of a repeated flag)."""
        runner = [f"--runner={BEAM_RUNNERS[self.beam_runner]}"]
        if self.beam_runner == "direct":
            workers = max(1, int(self.resources.get("Transform", Resources(1, 1)).cpu))
            runner += [
                "--direct_running_mode=multi_processing",
                f"--direct_num_workers={workers}",
                configs.DIRECT_RUNNER_WORKERS_ARG,
            ]
        return [*runner, *self.beam_args]


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


def build_pipeline(options: KubeflowCompile):
    """create_pipeline with the KFP settings: no ML Metadata config (KFP brings its own)."""
    from pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(
        pipeline_name=options.pipeline_name,
        pipeline_root=options.pipeline_root,
        data_dir=options.data,
        data_format=options.data_format,
        serving_dir=options.serving_dir,
        hparams=options.hparams.to_config(),
        blessing=options.blessing,
        report_examples=options.report_examples,
        baseline=options.baseline,
        eval_fraction=options.eval_fraction,
        split_by=options.split_by,
        serving=options.serving,
        beam_pipeline_args=options.all_beam_args(),
        metadata_connection_config=None,
        enable_cache=options.enable_cache,
    )
    by_id = {component.id: component for component in pipeline.components}
    for name, resources in options.resources.items():
        if name not in by_id:
            raise KubeflowConfigError(f"the pipeline has no {name} to give resources to")
        by_id[name].with_platform_config(resource_spec(resources))
    return pipeline


def compile_pipeline(options: KubeflowCompile) -> dict:
    """Validates, compiles and writes the spec; returns the PipelineJob dict TFX built."""
    options.validate()
    from tfx import v1 as tfx

    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=options.image,
            # Schema 2.1.0 (parameterType, runtimeValue.constant), as the KFP 2 SDK writes it
            # and the open-source KFP 2 backend reads it; Vertex AI takes it too.
            use_pipeline_spec_2_1=True,
        )
    )
    pipeline = build_pipeline(options)
    job = runner.run(pipeline, write_out=False)
    # For readers and Vertex AI: the open-source backend ignores this field (submit.py passes the
    # root with the run), falling back to a minio:// root that TensorFlow cannot write.
    job["pipelineSpec"]["defaultPipelineRoot"] = options.pipeline_root
    use_our_entrypoint(job["pipelineSpec"], pipeline)
    if options.s3_secret:
        job["platformSpec"] = s3_secret_platform_spec(job["pipelineSpec"], options.s3_secret)
    # What is served changes between runs: ServedModel must run every time.
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    if choice.SERVED_MODEL_ID in tasks:
        tasks[choice.SERVED_MODEL_ID]["cachingOptions"] = {}
    write_spec(job, options.output)
    return job


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


# --- Command line -----------------------------------------------------------------------------


def add_compile_parser(commands: argparse._SubParsersAction) -> None:
    """Registers `compile kubeflow` on the `siamese-tfx` subcommands."""
    compile_parser = commands.add_parser(
        "compile",
        help="compile the pipeline for an orchestrator (kubeflow)",
        description="Compile the pipeline for another orchestrator instead of running it here.",
    )
    targets = compile_parser.add_subparsers(dest="target", required=True)
    kf = targets.add_parser(
        "kubeflow",
        help="a Kubeflow Pipelines v2 spec (Trainer on GPUs, our container image)",
        description="Compile the pipeline to a KFP v2 spec. Arguments after a bare `--` go to "
        "Beam, after the runner's own, e.g. `-- --project=P --region=R --temp_location=gs://...` "
        "for Dataflow. See kubeflow/README.md.",
    )
    where = kf.add_argument_group("where things are (buckets: gs:// or s3://)")
    where.add_argument("--image", required=True, help="container image built from Dockerfile")
    where.add_argument("--pipeline-root", required=True, help="bucket path for all artifacts")
    where.add_argument("--data", required=True, help="bucket path of the dataset")
    where.add_argument(
        "--data-format",
        required=True,
        choices=DATA_FORMATS,
        help="idx: MNIST-format files; folder: a folder per identity; tfrecord: raw-format "
        "TFRecords (not detected: compiling does not read the bucket)",
    )
    where.add_argument(
        "--serving-dir",
        required=True,
        help="bucket path the Pusher writes <version>/saved_model.pb into (TF Serving's base path)",
    )
    where.add_argument("--output", required=True, help="pipeline.yaml (KFP) or pipeline.json")
    where.add_argument("--pipeline-name", default=configs.PIPELINE_NAME, help="%(default)s")

    res = kf.add_argument_group("resources (each value is both the request and the limit)")
    res.add_argument(
        "--gpus", type=parse_gpus, default=1, help="GPUs for the Trainer, 0 for none (default 1)"
    )
    res.add_argument(
        "--gpu-type",
        default=DEFAULT_GPU_TYPE,
        help="the GPUs' Kubernetes resource name (default %(default)s)",
    )
    for name, (cpu, memory) in RESOURCE_DEFAULTS.items():
        flag = name.lower()
        res.add_argument(
            f"--{flag}-cpu", type=parse_cpu, default=cpu, help=f"{name} CPUs (default {cpu:g})"
        )
        res.add_argument(
            f"--{flag}-memory",
            type=parse_memory,
            default=memory,
            help=f"{name} memory: 16Gi, 16G, 512Mi... (default {memory:g}G)",
        )

    beam = kf.add_argument_group("beam")
    beam.add_argument(
        "--beam-runner",
        choices=tuple(BEAM_RUNNERS),
        default="direct",
        help="direct (in each pod, one worker per Transform CPU; default), dataflow, flink, spark",
    )

    kf.add_argument(
        "--baseline",
        choices=choice.BASELINES,
        default=configs.DEFAULT_BASELINE,
        help="what a new model is compared with: served (the newest model under --serving-dir, "
        "any KFP; default), resolver (TFX's latest blessed model: Vertex AI Pipelines only, "
        "open-source KFP refuses its resolver executors) or none (--lower-bound alone)",
    )
    kf.add_argument(
        "--s3-secret",
        metavar="NAME",
        help="Kubernetes secret (in the run's namespace) whose keys "
        + ", ".join(S3_SECRET_KEYS)
        + " every step gets as environment variables: MinIO/S3 settings for open-source KFP "
        "(.yaml output only)",
    )
    kf.add_argument("--no-cache", action="store_true", help="turn off KFP's step cache")
    shared_options.add_shared_options(kf)


def options_from_args(
    args: argparse.Namespace, settings: shared_options.SharedSettings, beam_args: list[str]
) -> KubeflowCompile:
    resources = {
        name: Resources(
            cpu=getattr(args, f"{name.lower()}_cpu"),
            memory_gb=getattr(args, f"{name.lower()}_memory"),
        )
        for name in RESOURCE_DEFAULTS
    }
    resources["Trainer"] = Resources(
        resources["Trainer"].cpu, resources["Trainer"].memory_gb, args.gpus, args.gpu_type
    )
    return KubeflowCompile(
        image=args.image,
        pipeline_root=args.pipeline_root,
        data=args.data,
        data_format=args.data_format,
        serving_dir=args.serving_dir,
        output=args.output,
        hparams=settings.hparams,
        resources=resources,
        beam_runner=args.beam_runner,
        beam_args=list(beam_args),
        baseline=args.baseline,
        pipeline_name=args.pipeline_name,
        blessing=settings.blessing,
        report_examples=settings.report_examples,
        eval_fraction=settings.eval_fraction,
        split_by=settings.split_by,
        serving=settings.serving,
        enable_cache=not args.no_cache,
        s3_secret=args.s3_secret,
    )


def compile_from_args(
    args: argparse.Namespace,
    settings: shared_options.SharedSettings,
    beam_args: list[str] | tuple = (),
) -> int:
    """`siamese-tfx compile kubeflow ...` with the shared options already validated (the CLI
    exits 1 for those): 0 when written, 2 for paths or resources that cannot work."""
    compile_options = options_from_args(args, settings, beam_args)
    try:
        job = compile_pipeline(compile_options)
    except KubeflowConfigError as error:
        print(f"siamese-tfx compile kubeflow: error: {error}", file=sys.stderr)
        return 2
    tasks = sorted(job["pipelineSpec"]["root"]["dag"]["tasks"])
    print(f"Compiled {len(tasks)} steps ({', '.join(tasks)}) to {compile_options.output}")
    print(f"Image: {compile_options.image}; pipeline root: {compile_options.pipeline_root}")
    print(
        "Submit it with: python kubeflow/submit.py --host URL --package " + compile_options.output
    )
    return 0
