"""Pipeline-wide defaults: names, the dotted paths of our code, and layout of an output dir."""

import os

PIPELINE_NAME = "siamese-tfx"
PREPROCESSING_FN = "components.transform.preprocessing.preprocessing_fn"
RUN_FN = "components.trainer.run.run_fn"

DEFAULT_DATA = "digits"
DEFAULT_OUTPUT_DIR = "runs/default"

# The DirectRunner runs its workers in this process (in_memory) or as subprocesses of it
# (multi_processing), where every dependency is installed. The container image flag, which
# the DirectRunner ignores, tells TFX so: without a dependency flag each Beam component first
# packs TFX into an sdist for remote workers (~1.5 s each,
# tfx.utils.dependency_utils.make_beam_dependency_flags).
DIRECT_RUNNER_WORKERS_ARG = "--sdk_container_image=none"
DEFAULT_BEAM_ARGS = (
    "--direct_running_mode=in_memory",
    "--direct_num_workers=1",
    DIRECT_RUNNER_WORKERS_ARG,
)


def pipeline_root(output_dir: str) -> str:
    return os.path.join(output_dir, "tfx")


def metadata_path(output_dir: str) -> str:
    return os.path.join(output_dir, "metadata.sqlite")


def serving_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "serving_model")


def summary_path(output_dir: str) -> str:
    return os.path.join(output_dir, "summary.json")


def datasets_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "datasets")


def log_path(output_dir: str) -> str:
    return os.path.join(output_dir, "logs", "run.log")


def lock_path(output_dir: str) -> str:
    return os.path.join(output_dir, ".run.lock")
