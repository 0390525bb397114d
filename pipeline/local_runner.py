"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata."""

import os
from collections.abc import Callable

from tfx.dsl.compiler import compiler
from tfx.orchestration import metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components.baseline import choice
from components.example_gen import digits, sources
from components.example_gen.split_modes import Dataset, Split
from pipeline import configs, filesystems, summary
from pipeline.pipeline import create_pipeline
from pipeline.settings import PipelineSettings


def resolve_data(data: str, split: Split, output_dir: str) -> Dataset:
    """The Dataset at `data`, its format detected; the built-in digits are written out as IDX
    files."""
    data_format = sources.detect_format(data)
    if data_format == sources.DIGITS:
        directory = digits.materialize(os.path.join(configs.datasets_dir(output_dir), "digits"))
        return Dataset(directory, sources.IDX, split)
    return Dataset(data if "://" in data else os.path.abspath(data), data_format, split)


def dataset_name(data: str) -> str:
    return data if data == sources.DIGITS else os.path.basename(os.path.normpath(data))


def counter(output_dir: str, pipeline_name: str) -> Callable[[str], str]:
    """component id -> its count for the console ('300 examples', '14 metrics'), from MLMD."""
    metadata_path = configs.metadata_path(os.path.abspath(output_dir))
    return lambda component: summary.component_count(metadata_path, pipeline_name, component)


def run(
    settings: PipelineSettings,
    data: str,
    split: Split,
    output_dir: str,
    *,
    pipeline_root: str | None = None,
    serving_dir: str | None = None,
    beam_args=configs.DEFAULT_BEAM_ARGS,
) -> dict:
    """Runs (or resumes, reusing cached outputs) the pipeline; returns and writes the summary.

    Artifacts go to `pipeline_root` and pushed models to `serving_dir` (both may be s3:// or
    gs://; by default under output_dir); ML Metadata and summary.json stay in output_dir.
    """
    output_dir = os.path.abspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    pipeline_root = pipeline_root or configs.pipeline_root(output_dir)
    serving_dir = serving_dir or configs.serving_dir(output_dir)
    filesystems.register_for(data, pipeline_root, serving_dir)
    pipeline = create_pipeline(
        settings,
        root=pipeline_root,
        data=resolve_data(data, split, output_dir),
        serving_dir=serving_dir,
        beam_args=beam_args,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(
            configs.metadata_path(output_dir)
        ),
    )
    pipeline_ir = compiler.Compiler().compile(pipeline)
    choice.uncached(pipeline_ir)  # Each run compares against what is served now.
    LocalDagRunner().run_with_ir(pipeline_ir)
    result = summary.build_summary(
        configs.metadata_path(output_dir),
        settings.name,
        dataset_name(data),
        blessing=settings.blessing,
    )
    summary.write_summary(result, configs.summary_path(output_dir))
    return result
