"""The `siamese-tfx` command line: `run`, `compile kubeflow`, `report`, `predict`, `gallery`."""

import argparse
import sys

from components.example_gen.split_modes import Split
from pipeline import configs, options
from pipeline.kubeflow_settings import KubeflowTarget
from pipeline.settings import PipelineSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siamese-tfx",
        description="Train a triplet-loss siamese embedding network with TFX and push it "
        "for TF Serving.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the pipeline locally on Apache Beam",
        description="Run the whole pipeline locally. Arguments after a bare `--` go to Beam, "
        "e.g. `-- --direct_running_mode=multi_threading --direct_num_workers=1`.",
    )
    run.add_argument(
        "--data",
        default=configs.DEFAULT_DATA,
        help="'digits' (built in, default), an MNIST-format folder (train-/t10k- "
        "IDX files, .gz or not), a folder per identity (ROOT/<identity>/"
        "<image>.png|jpg), or a folder of raw-format TFRecord files",
    )
    run.add_argument(
        "--output-dir",
        default=configs.DEFAULT_OUTPUT_DIR,
        help="pipeline root, ML Metadata, pushed models and summary.json "
        "(default %(default)s); re-running resumes from cached outputs",
    )
    run.add_argument(
        "--pipeline-root",
        help="where the artifacts go (default OUTPUT_DIR/tfx); may be s3:// (MinIO) or gs://, "
        "with the S3_ENDPOINT / AWS_* variables of kubeflow/README.md",
    )
    run.add_argument(
        "--serving-dir",
        help="TF Serving's base path: pushed models and the baseline, the newest version there "
        "(default OUTPUT_DIR/serving_model); may be s3:// or gs://",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show the libraries' logging on the console too (it always goes to "
        "OUTPUT_DIR/logs/run.log)",
    )
    options.add_shared_options(run)
    report = commands.add_parser(
        "report",
        help="write an HTML report of the latest run",
        description="Write one self-contained HTML page (figures embedded) for the latest run in "
        "--output-dir: dataset, hyperparameters, metrics against the baseline, the blessing "
        "decision and its reasons, evaluation and training figures. Prints its path.",
    )
    report.add_argument(
        "--output-dir",
        default=configs.DEFAULT_OUTPUT_DIR,
        help="the run's output dir (default %(default)s)",
    )
    add_compile_parser(commands)
    from pipeline import predict  # No TensorFlow at import time.

    predict.add_parser(commands)
    from pipeline import gallery_command  # No TensorFlow at import time.

    gallery_command.add_parser(commands)
    return parser


def add_compile_parser(commands: argparse._SubParsersAction) -> None:
    """`compile kubeflow`: KubeflowTarget's options, the baseline, then the shared ones."""
    compile_parser = commands.add_parser(
        "compile",
        help="compile the pipeline for an orchestrator (kubeflow)",
        description="Compile the pipeline for another orchestrator instead of running it here.",
    )
    targets = compile_parser.add_subparsers(dest="target", required=True)
    kubeflow = targets.add_parser(
        "kubeflow",
        help="a Kubeflow Pipelines v2 spec (Trainer on GPUs, our container image)",
        description="Compile the pipeline to a KFP v2 spec. Arguments after a bare `--` go to "
        "Beam, after the runner's own, e.g. `-- --project=P --region=R --temp_location=gs://...` "
        "for Dataflow. See kubeflow/README.md.",
    )
    options.add_settings(kubeflow, "where and on what it runs", KubeflowTarget)
    options.add_settings(kubeflow, "pipeline", PipelineSettings, also=("baseline", "name"))
    options.add_shared_options(kubeflow)


def split_beam_args(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own_args, beam_args = split_beam_args(argv)
    args = build_parser().parse_args(own_args)
    if args.command == "report":
        return report_command(args.output_dir)
    if args.command == "predict":
        from pipeline import predict

        return predict.main(args)
    if args.command == "gallery":
        from pipeline import gallery_command

        return gallery_command.main(args)
    command = " ".join(filter(None, (args.command, getattr(args, "target", None))))
    try:  # Every option checked before anything heavy is imported or started.
        settings = options.pipeline_settings_from(args)
        split = options.settings_from(args, Split)
        if args.command == "run":
            options.check_data(args.data, split)
            options.prepare_output_dir(args.output_dir)
        else:
            dataset = options.dataset_from(args.data, args.data_format, split)
    except options.OptionError as error:  # One line names the option and the problem.
        print(f"siamese-tfx {command}: error: {error}", file=sys.stderr)
        return 1
    if args.command == "compile":
        return compile_command(args, settings, dataset, beam_args)
    return run_command(args, settings, split, beam_args)


def report_command(output_dir: str) -> int:
    from pipeline import report

    try:
        print(report.write_report(output_dir))
    except FileNotFoundError as error:
        print(f"siamese-tfx: {error}", file=sys.stderr)
        return 1
    return 0


def compile_command(args, settings: PipelineSettings, dataset, beam_args) -> int:
    """`siamese-tfx compile kubeflow`: 0 when written, 2 for paths or resources that cannot
    work (the shared options, already checked, exit 1)."""
    from pipeline import kubeflow_runner
    from pipeline.kubeflow_settings import KubeflowConfigError

    try:
        target = options.settings_from(args, KubeflowTarget)
        job = kubeflow_runner.compile_pipeline(settings, dataset, target, beam_args)
    except (KubeflowConfigError, options.OptionError) as error:
        print(f"siamese-tfx compile kubeflow: error: {error}", file=sys.stderr)
        return 2
    tasks = sorted(job["pipelineSpec"]["root"]["dag"]["tasks"])
    print(f"Compiled {len(tasks)} steps ({', '.join(tasks)}) to {target.output}")
    print(f"Image: {target.image}; pipeline root: {target.pipeline_root}")
    print("Submit it with: python kubeflow/submit.py --host URL --package " + target.output)
    return 0


def run_command(args: argparse.Namespace, settings: PipelineSettings, split, beam_args) -> int:
    """`siamese-tfx run`: 0 blessed and pushed, 2 finished but not blessed, 1 failed."""
    from pipeline import console, run_lock

    log_path = configs.log_path(args.output_dir)
    try:
        with run_lock.output_dir_lock(args.output_dir):
            with console.run_console(log_path, args.verbose) as progress:
                from pipeline import local_runner  # Heavy imports: their logging goes to the log.

                progress.count = local_runner.counter(args.output_dir, settings.name)
                try:
                    result = local_runner.run(
                        settings,
                        args.data,
                        split,
                        args.output_dir,
                        pipeline_root=args.pipeline_root,
                        serving_dir=args.serving_dir,
                        beam_args=[*configs.DEFAULT_BEAM_ARGS, *beam_args],
                    )
                except Exception as error:  # The traceback goes to the log, one line here.
                    logging_failure(error)
                    failed_in = progress.component or "the pipeline"
                    raise RunFailed(
                        f"{failed_in} failed on {args.data}: {describe(error)}"
                    ) from None
    except run_lock.OutputDirInUse as error:
        print(f"siamese-tfx run: error: {error}", file=sys.stderr)
        return 1
    except RunFailed as error:
        print(f"siamese-tfx run: {error}", file=sys.stderr)
        print(
            f"Full log: {log_path} (fix the cause and re-run: finished steps are reused)",
            file=sys.stderr,
        )
        return 1
    from pipeline import summary

    print("\n" + summary.format_summary(result))
    print(f"Summary written to {configs.summary_path(args.output_dir)}; log: {log_path}")
    return 0 if result["blessed"] else 2


class RunFailed(RuntimeError):
    """A run stopped with an error; the message names the component, the input and the cause."""


def logging_failure(error: BaseException) -> None:
    import logging

    logging.getLogger("siamese-tfx").error("run failed", exc_info=error)


def describe(error: BaseException) -> str:
    """`error` on one line: its type and the first line of its message, after the S3 endpoint
    when that is what could not be reached (tensorflow-io's curl errors do not name it)."""
    from pipeline import filesystems  # Light: os and logging only.

    first_line = (str(error).strip().splitlines() or [""])[0].lstrip(": ")
    described = f"{type(error).__name__}: {first_line}"
    unreachable = filesystems.unreachable_endpoint(error)
    return f"{unreachable} ({described})" if unreachable else described


def console_script() -> None:
    """The `siamese-tfx` command (and `python -m pipeline`): main(), then exit at once.

    TensorFlow with tensorflow-io (s3://) can abort at interpreter shutdown ("pure virtual method
    called") after the work is done; os._exit after flushing keeps the command's exit status.
    """
    import logging
    import os

    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console_script()
