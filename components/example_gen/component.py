"""The ImageExampleGen component: FileBasedExampleGen with our image executor."""

from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components.example_gen import executor, sources


def create_example_gen(
    data_dir: str, data_format: str, eval_fraction: float, split_by: str = ""
) -> FileBasedExampleGen:
    """An ExampleGen over `data_dir`; its driver fingerprints the input files for caching.

    `split_by` ("image" or "identity"; "" = the format's default) is explained in sources.py.
    """
    return FileBasedExampleGen(
        input_base=data_dir,
        input_config=sources.input_config(data_format),
        output_config=sources.output_config(data_format, eval_fraction, split_by),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
    ).with_id("ExampleGen")
