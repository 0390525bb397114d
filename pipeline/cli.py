"""The `siamese-tfx` command line: `run` trains and pushes on local data."""

import argparse
import dataclasses
import logging
import sys

from components.trainer.hparams import HParams
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
        choices=("cnn", "mlp"),
        default=DEFAULTS.model,
        help="embedding network (default %(default)s)",
    )
    group.add_argument(
        "--embedding-dim",
        type=int,
        default=DEFAULTS.embedding_dim,
        help="embedding size D (default %(default)s)",
    )
    group.add_argument(
        "--triplet-strategy",
        choices=("semi_hard", "batch_hard", "batch_all"),
        default=DEFAULTS.triplet_strategy,
        help="online triplet mining (default %(default)s)",
    )
    group.add_argument(
        "--margin",
        type=float,
        default=DEFAULTS.margin,
        help="triplet loss margin (default %(default)s)",
    )
    group.add_argument(
        "--squared-distance",
        action="store_true",
        help="mine and penalise squared Euclidean distances",
    )
    group.add_argument(
        "--soft-margin",
        action="store_true",
        help="softplus instead of a hinge with margin (semi_hard, batch_hard)",
    )
    group.add_argument(
        "--identities-per-batch",
        type=int,
        default=DEFAULTS.identities_per_batch,
        help="P identities in each class-balanced batch (default %(default)s)",
    )
    group.add_argument(
        "--images-per-identity",
        type=int,
        default=DEFAULTS.images_per_identity,
        help="K images of each identity in a batch (default %(default)s)",
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
        help="Adam learning rate (default %(default)s)",
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
        "--eval-fraction",
        type=float,
        default=configs.DEFAULT_EVAL_FRACTION,
        help="share of images in eval for folder and TFRecord data "
        "(default %(default)s; IDX data keeps its train/t10k files)",
    )
    run.add_argument(
        "--min-precision-at-1",
        type=float,
        default=configs.DEFAULT_PRECISION_AT_1_LOWER_BOUND,
        help="Evaluator blesses (and Pusher pushes) only above this eval "
        "Precision@1 (default %(default)s)",
    )
    add_training_options(run)
    return parser


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
    from pipeline import local_runner, summary  # Heavy imports after --help.

    options = local_runner.LocalRun(
        data=args.data,
        output_dir=args.output_dir,
        hparams=hparams_from(args),
        precision_at_1_lower_bound=args.min_precision_at_1,
        eval_fraction=args.eval_fraction,
        beam_args=[*configs.DEFAULT_BEAM_ARGS, *beam_args],
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
