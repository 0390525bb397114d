"""KubeflowTarget: where a compiled pipeline runs on Kubeflow, on what, and its checks.

The image, the buckets, the per-step resources and Beam's runner: each a `setting` field, so
`compile kubeflow` builds its flags from them (pipeline/options.py). `__post_init__` checks
what a pod will need, before anything is compiled: pods cannot see this machine, so the
pipeline root, the data and the serving dir must be buckets (gs:// or s3://); the data format
is given, not detected, since compiling must not need the bucket or credentials. A value that
cannot work raises KubeflowConfigError naming the flag. Light: no TFX or KFP here.
"""

import argparse
import dataclasses
import logging
import math
import re

from components.example_gen.dataset_check import FOLDER, IDX, TFRECORD
from components.settings import check_fields, setting
from pipeline import configs

DATA_FORMATS = (IDX, FOLDER, TFRECORD)  # split_modes.FORMATS, less the built-in digits.
REMOTE_SCHEMES = ("gs", "s3")
BEAM_RUNNERS = {
    "direct": "DirectRunner",
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
}
DEFAULT_GPU_TYPE = "nvidia.com/gpu"
S3_PLUGIN = "pipeline.beam_s3_plugin"  # s3:// in Beam's SDK worker processes too.
RESOURCE_COMPONENTS = ("Trainer", "Transform", "Evaluator")  # The steps given resources.
OUTPUT_EXTENSIONS = (".json", ".yaml", ".yml")
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_INFERENCE_SERVICE = re.compile(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
)
_GPU_TYPE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
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


class KubeflowConfigError(ValueError):
    """An argument would compile into a pipeline that cannot run; the message says why."""


# --- Values written in Kubernetes' own notation (argparse types) ------------------------------


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


# --- Checks of what a pod will need -----------------------------------------------------------


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


@dataclasses.dataclass(frozen=True)
class Resources:
    """One step's resources; each amount is both the request and the limit."""

    cpu: float
    memory_gb: float
    gpus: int = 0
    gpu_type: str = DEFAULT_GPU_TYPE


def _cpu(component: str, default: float) -> dataclasses.Field:
    return setting(default, f"{component} CPUs", low=0.0, low_open=True, parse=parse_cpu)


def _memory(component: str, default: float) -> dataclasses.Field:
    return setting(
        default,
        f"{component} memory: 16Gi, 16G, 512Mi... in GB",
        low=0.0,
        low_open=True,
        parse=parse_memory,
    )


@dataclasses.dataclass(frozen=True)
class KubeflowTarget:
    """Where and on what the compiled pipeline runs; checked when made (see module doc)."""

    image: str = setting("", "container image built from Dockerfile", required=True)
    pipeline_root: str = setting("", "bucket path for all artifacts", required=True)
    data: str = setting("", "bucket path of the dataset", required=True)
    data_format: str = setting(
        "",
        "idx: MNIST-format files; folder: a folder per identity; tfrecord: raw-format "
        "TFRecords (not detected: compiling does not read the bucket)",
        choices=DATA_FORMATS,
        required=True,
    )
    serving_dir: str = setting(
        "",
        "bucket path the Pusher writes <version>/saved_model.pb into (TF Serving's base path)",
        required=True,
    )
    output: str = setting("", "pipeline.yaml (KFP) or pipeline.json", required=True)
    gpus: int = setting(1, "GPUs for the Trainer, 0 for none", low=0, parse=parse_gpus)
    gpu_type: str = setting(DEFAULT_GPU_TYPE, "the GPUs' Kubernetes resource name")
    trainer_cpu: float = _cpu("Trainer", 4.0)
    trainer_memory: float = _memory("Trainer", 16.0)
    transform_cpu: float = _cpu("Transform", 4.0)
    transform_memory: float = _memory("Transform", 16.0)
    evaluator_cpu: float = _cpu("Evaluator", 2.0)
    evaluator_memory: float = _memory("Evaluator", 8.0)
    beam_runner: str = setting(
        "direct",
        "direct (in each step's pod, in the step's process), dataflow, flink or spark",
        choices=tuple(BEAM_RUNNERS),
    )
    s3_secret: str = setting(
        "",
        "Kubernetes secret (in the run's namespace) whose keys AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_REGION, S3_ENDPOINT, S3_USE_HTTPS, S3_VERIFY_SSL every "
        "step gets as environment variables: MinIO/S3 settings for open-source KFP (.yaml "
        "output only)",
        metavar="NAME",
    )
    cache: bool = setting(True, "turn off KFP's step cache", flag="--no-cache", off_switch=True)
    inference_service: str = setting(
        "",
        "KServe InferenceService that a last step rolls onto each pushed version "
        "(kubeflow/kserve.yaml); the run's service account needs its Role",
        metavar="NAMESPACE/NAME",
    )

    def __post_init__(self):
        """Checks everything a pod will need; raises KubeflowConfigError with the reason."""
        check_fields(self)
        normalised = {
            "image": check_image(self.image),
            "pipeline_root": check_bucket_path("--pipeline-root", self.pipeline_root),
            "data": check_bucket_path("--data", self.data),
            "serving_dir": check_bucket_path("--serving-dir", self.serving_dir),
        }
        for name, value in normalised.items():
            object.__setattr__(self, name, value)
        check_output(self.output)
        if self.gpus:
            check_gpu_type(self.gpu_type)
        if self.s3_secret:
            if not _SECRET_NAME.match(self.s3_secret):
                raise KubeflowConfigError(
                    f"--s3-secret {self.s3_secret}: not a Kubernetes secret name"
                )
            if self.output.endswith(".json"):
                raise KubeflowConfigError(
                    f"--s3-secret with --output {self.output}: the secret goes into the YAML "
                    "package's Kubernetes platform spec (open-source KFP); write .yaml"
                )
        if self.inference_service and not _INFERENCE_SERVICE.match(self.inference_service):
            raise KubeflowConfigError(
                f"--inference-service {self.inference_service}: expected NAMESPACE/NAME, each a "
                "Kubernetes name (lower-case letters, digits and '-')"
            )
        if self.uses_s3():
            logging.warning(
                "s3:// paths need TensorFlow I/O's S3 file system in the image (TensorFlow 2.16 "
                "has none built in): see 'S3 and MinIO' in kubeflow/README.md"
            )

    def check_gallery(self, gallery: str) -> None:
        """A --gallery dataset must be in a bucket too."""
        if gallery:
            check_bucket_path("--gallery", gallery)

    def resources(self) -> dict[str, Resources]:
        """The steps given resources: the Trainer with the GPUs, Transform and the Evaluator."""
        amounts = {
            name: Resources(
                getattr(self, f"{name.lower()}_cpu"), getattr(self, f"{name.lower()}_memory")
            )
            for name in RESOURCE_COMPONENTS
        }
        trainer = amounts["Trainer"]
        amounts["Trainer"] = Resources(trainer.cpu, trainer.memory_gb, self.gpus, self.gpu_type)
        return amounts

    def uses_s3(self) -> bool:
        return any(p.startswith("s3://") for p in (self.pipeline_root, self.data, self.serving_dir))

    def beam_args(self, user_args=()) -> list[str]:
        """The runner's flags, then the user's (Beam keeps the last of a repeated flag)."""
        runner = [f"--runner={BEAM_RUNNERS[self.beam_runner]}"]
        if self.beam_runner == "direct":
            # In the step's own process. Subprocess workers (multi_processing) each import TF
            # and TFX afresh, about a minute per Beam step on 2 cores, and do not inherit the
            # step's s3:// registration; two worker threads (multi_threading) took the Evaluator
            # past its pod's 8 GB at Fashion-MNIST scale (benchmarks/beam_modes.py).
            runner += configs.DEFAULT_BEAM_ARGS  # in_memory, as a local run
        if self.uses_s3():
            # For SDK worker processes (multi_processing, Flink, Spark, Dataflow), if chosen.
            runner.append(f"--beam_plugins={S3_PLUGIN}")
        return [*runner, *user_args]
