"""The `siamese-tfx` command line: `run` locally, `compile kubeflow`, and `report`."""

import argparse
import dataclasses
import logging
import sys

from components.evaluator.embedding_metrics import gating_metric_names
from components.trainer.hparams import LR_SCHEDULES, MIXED_PRECISION, MODELS, STRATEGIES, HParams
from pipeline import configs

DEFAULTS = HParams()


def add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument(
        "--image-size",
        type=int,
        default=DEFAULTS.image_size,
        help="images are resized to SIZE x SIZE (default %(default)s)",
    )
    group.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=DEFAULTS.channels,
        help="1 for grey, 3 for RGB; inputs are converted (default %(default)s)",
    )
    group.add_argument(
        "--model",
        choices=MODELS,
        default=DEFAULTS.model,
        help="embedding network: cnn (conv blocks with batch norm, for small images), "
        "resnet (a small residual net for larger RGB images, e.g. 64x64 or 96x96 faces) or "
        "mlp (the original notebook's Dense(64, relu) -> Dense(D, sigmoid)) "
        "(default %(default)s)",
    )
    group.add_argument(
        "--width",
        type=int,
        default=DEFAULTS.width,
        help="filters of the first cnn block / resnet stage, doubled per stage "
        "(default %(default)s)",
    )
    group.add_argument(
        "--embedding-dim",
        type=int,
        default=DEFAULTS.embedding_dim,
        help="embedding size D (default %(default)s)",
    )
    group.add_argument(
        "--triplet-strategy",
        choices=STRATEGIES,
        default=DEFAULTS.triplet_strategy,
        help="online mining in P x K batches: semi_hard (FaceNet), batch_hard (Hermans et al.), "
        "batch_all; or random: the notebook's random triplets through a three-branch siamese "
        "network with its mean-squared-difference loss (default %(default)s)",
    )
    group.add_argument(
        "--margin",
        type=float,
        default=DEFAULTS.margin,
        help="triplet loss margin (default %(default)s)",
    )
    group.add_argument(
        "--squared-distance",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.squared_distance,
        help="mine and penalise squared Euclidean distances",
    )
    group.add_argument(
        "--soft-margin",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.soft_margin,
        help="softplus instead of a hinge with margin (not batch_all)",
    )
    group.add_argument(
        "--identities-per-batch",
        type=int,
        default=DEFAULTS.identities_per_batch,
        help="P different identities in each class-balanced batch; at most the number of "
        "identities (default %(default)s)",
    )
    group.add_argument(
        "--images-per-identity",
        type=int,
        default=DEFAULTS.images_per_identity,
        help="K images of each identity in a batch (default %(default)s)",
    )
    group.add_argument(
        "--triplets-per-batch",
        type=int,
        default=DEFAULTS.triplets_per_batch,
        help="random strategy: triplets (3 images each) per batch (default %(default)s)",
    )
    group.add_argument(
        "--epochs", type=int, default=DEFAULTS.epochs, help="training epochs (default %(default)s)"
    )
    group.add_argument(
        "--steps-per-epoch",
        type=int,
        default=DEFAULTS.steps_per_epoch,
        help="batches per epoch; 0 = one pass over the train images (default)",
    )
    group.add_argument(
        "--learning-rate",
        type=float,
        default=DEFAULTS.learning_rate,
        help="Adam learning rate; the peak of the cosine schedule (default %(default)s)",
    )
    group.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default=DEFAULTS.lr_schedule,
        help="cosine: linear warm-up, then cosine decay to 0 at the last step; "
        "constant (default %(default)s)",
    )
    group.add_argument(
        "--warmup-epochs",
        type=float,
        default=DEFAULTS.warmup_epochs,
        help="length of the linear warm-up, in epochs (default %(default)s)",
    )
    group.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.augment,
        help="random shifts of the training images",
    )
    group.add_argument(
        "--augment-shift",
        type=float,
        default=DEFAULTS.augment_shift,
        help="with --augment: largest shift, a fraction of the image size (default %(default)s)",
    )
    group.add_argument(
        "--augment-flip",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.augment_flip,
        help="with --augment: also random left-right flips; for faces, not for digits or clothes",
    )
    group.add_argument(
        "--early-stopping-patience",
        type=int,
        default=DEFAULTS.early_stopping_patience,
        help="stop after this many epochs without a lower eval-split loss and keep the best "
        "epoch's weights; 0 = off (default %(default)s)",
    )
    group.add_argument(
        "--backup-dir",
        default=DEFAULTS.backup_dir,
        help="where training backs itself up each epoch, so that a re-run of a killed Trainer "
        "resumes; default: under the pipeline root, keyed by a hash of the inputs and settings",
    )
    group.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISION,
        default=DEFAULTS.mixed_precision,
        help="auto: float16 on a GPU, bfloat16 on a CPU with bfloat16 units, else off "
        "(default %(default)s)",
    )
    group.add_argument("--seed", type=int, default=DEFAULTS.seed, help="random seed")


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
        "e.g. `-- --direct_running_mode=multi_processing --direct_num_workers=2`.",
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
        "--eval-fraction",
        type=float,
        default=configs.DEFAULT_EVAL_FRACTION,
        help="share of images in eval for folder and TFRecord data "
        "(default %(default)s; IDX data keeps its train/t10k files)",
    )
    add_blessing_options(run)
    add_training_options(run)
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
    from pipeline import kubeflow_runner  # Not at the top: it imports this module.

    kubeflow_runner.add_compile_parser(commands)
    return parser


def add_blessing_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("blessing (Evaluator) and report")
    group.add_argument(
        "--gating-metric",
        default=configs.DEFAULT_GATING_METRIC,
        choices=gating_metric_names(),
        help="eval metric that decides the blessing (default %(default)s)",
    )
    group.add_argument(
        "--lower-bound",
        type=float,
        default=configs.DEFAULT_LOWER_BOUND,
        help="bless (and push) only when the gating metric is at least this (default %(default)s)",
    )
    group.add_argument(
        "--max-regression",
        type=float,
        default=configs.DEFAULT_MAX_REGRESSION,
        help="refuse a model whose gating metric is more than this below the baseline's, the "
        "model served now (default %(default)s; the first run is judged by --lower-bound only)",
    )
    group.add_argument(
        "--report-examples",
        type=int,
        default=configs.DEFAULT_REPORT_EXAMPLES,
        help="eval examples embedded for the figures and projector (default %(default)s)",
    )


def blessing_from(args: argparse.Namespace) -> dict:
    """create_pipeline keyword arguments for the blessing and the report."""
    return {
        "gating_metric": args.gating_metric,
        "lower_bound": args.lower_bound,
        "max_regression": args.max_regression,
        "report_examples": args.report_examples,
    }


def hparams_from(args: argparse.Namespace) -> dict:
    names = [f.name for f in dataclasses.fields(HParams)]
    return HParams(**{name: getattr(args, name) for name in names}).to_config()


def split_beam_args(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own_args, beam_args = split_beam_args(argv)
    args = build_parser().parse_args(own_args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.command == "compile":
        from pipeline import kubeflow_runner

        return kubeflow_runner.compile_from_args(args, beam_args)
    if args.command == "report":
        from pipeline import report

        try:
            print(report.write_report(args.output_dir))
        except FileNotFoundError as error:
            print(f"siamese-tfx: {error}", file=sys.stderr)
            return 1
        return 0
    from pipeline import local_runner, summary  # Heavy imports after --help.

    options = local_runner.LocalRun(
        data=args.data,
        output_dir=args.output_dir,
        hparams=hparams_from(args),
        blessing=blessing_from(args),
        eval_fraction=args.eval_fraction,
        beam_args=[*configs.DEFAULT_BEAM_ARGS, *beam_args],
        pipeline_root=args.pipeline_root,
        serving_dir=args.serving_dir,
    )
    try:
        result = local_runner.run(options)
    except Exception as error:  # Show the cause plainly; the traceback is in the log above.
        print(f"\nsiamese-tfx: run failed: {type(error).__name__}: {error}", file=sys.stderr)
        print(
            "Fix the cause and re-run the same command: finished steps are reused.", file=sys.stderr
        )
        return 1
    print("\n" + summary.format_summary(result))
    print(f"Summary written to {configs.summary_path(args.output_dir)}")
    return 0 if result["blessed"] else 2


if __name__ == "__main__":
    sys.exit(main())
