"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata."""

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from tfx.dsl.compiler import compiler
from tfx.orchestration import metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components.baseline import choice
from components.evaluator.blessing import Blessing
from components.example_gen import digits, sources
from components.serving.settings import ServingSettings
from components.trainer.hparams import HParams
from pipeline import configs, filesystems, summary
from pipeline.pipeline import create_pipeline


@dataclass
class LocalRun:
    data: str
    output_dir: str
    hparams: HParams
    blessing: Blessing = field(default_factory=Blessing)
    report_examples: int = configs.DEFAULT_REPORT_EXAMPLES
    eval_fraction: float = configs.DEFAULT_EVAL_FRACTION
    split_by: str = ""  # "image" or "identity"; "" = the data format's default
    serving: ServingSettings = field(default_factory=ServingSettings)
    beam_args: list[str] = field(default_factory=lambda: list(configs.DEFAULT_BEAM_ARGS))
    pipeline_name: str = configs.PIPELINE_NAME
    # Artifacts and pushed models elsewhere than under output_dir (e.g. s3://); ML Metadata and
    # summary.json stay in output_dir.
    pipeline_root: str | None = None
    serving_dir: str | None = None


def resolve_data(data: str, output_dir: str) -> tuple[str, str]:
    """(directory, format) of the dataset; the built-in digits are written out as IDX files."""
    data_format = sources.detect_format(data)
    if data_format == sources.DIGITS:
        directory = digits.materialize(os.path.join(configs.datasets_dir(output_dir), "digits"))
        return directory, sources.IDX
    return (data if "://" in data else os.path.abspath(data)), data_format


def dataset_name(data: str) -> str:
    return data if data == sources.DIGITS else os.path.basename(os.path.normpath(data))


def counter(options: LocalRun) -> Callable[[str], str]:
    """component id -> its count for the console ('300 examples', '14 metrics'), from MLMD."""
    metadata_path = configs.metadata_path(os.path.abspath(options.output_dir))
    return lambda component: summary.component_count(
        metadata_path, options.pipeline_name, component
    )


def run(options: LocalRun) -> dict:
    """Runs (or resumes, reusing cached outputs) the pipeline; returns and writes the summary."""
    output_dir = os.path.abspath(options.output_dir)
    os.makedirs(output_dir, exist_ok=True)
    pipeline_root = options.pipeline_root or configs.pipeline_root(output_dir)
    serving_dir = options.serving_dir or configs.serving_dir(output_dir)
    filesystems.register_for(options.data, pipeline_root, serving_dir)
    data_dir, data_format = resolve_data(options.data, output_dir)
    pipeline = create_pipeline(
        pipeline_name=options.pipeline_name,
        pipeline_root=pipeline_root,
        data_dir=data_dir,
        data_format=data_format,
        serving_dir=serving_dir,
        hparams=options.hparams.to_config(),
        blessing=options.blessing,
        report_examples=options.report_examples,
        eval_fraction=options.eval_fraction,
        split_by=options.split_by,
        serving=options.serving,
        beam_pipeline_args=options.beam_args,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(
            configs.metadata_path(output_dir)
        ),
    )
    pipeline_ir = compiler.Compiler().compile(pipeline)
    choice.uncached(pipeline_ir)  # Each run compares against what is served now.
    LocalDagRunner().run_with_ir(pipeline_ir)
    result = summary.build_summary(
        configs.metadata_path(output_dir),
        options.pipeline_name,
        dataset_name(options.data),
        blessing=options.blessing,
    )
    summary.write_summary(result, configs.summary_path(output_dir))
    return result
