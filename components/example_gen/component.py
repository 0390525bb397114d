"""The ImageExampleGen component: FileBasedExampleGen with our image executor."""

from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components.example_gen import executor, sources
from components.example_gen.split_modes import Dataset


def create_example_gen(dataset: Dataset) -> FileBasedExampleGen:
    """An ExampleGen over `dataset.path`; its driver fingerprints the input files for caching.

    The split (by image or by identity, split_modes.py) is explained in sources.py.
    """
    return FileBasedExampleGen(
        input_base=dataset.path,
        input_config=sources.input_config(dataset.format),
        output_config=sources.output_config(dataset),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
    ).with_id("ExampleGen")
