"""Options that `run` and `compile kubeflow` share, and their checks, before anything heavy.

Each option group is an `add_*_options(parser)` function listed in SHARED_OPTION_GROUPS, so
another group slots in by appending to that tuple. `settings_from(args)` turns the parsed
options into the validated settings dataclasses (HParams, Blessing) and checks the rest;
a bad value raises `OptionError`, one line naming the option, the value and the allowed range.
Nothing here imports TensorFlow, TFX or Beam: validation answers within a second.
"""

import argparse
import dataclasses
import math

from components.evaluator.blessing import Blessing
from components.evaluator.embedding_metrics import gating_metric_names
from components.example_gen.split_modes import SPLIT_BY, check_split_by
from components.serving.settings import GALLERY_MODES, ServingSettings
from components.settings import SettingError, check_float, check_int
from components.trainer.hparams import (
    LR_SCHEDULES,
    MIXED_PRECISION,
    MODELS,
    SELECTION_METRICS,
    STRATEGIES,
    HParams,
)
from pipeline import configs

DEFAULTS = HParams()
BLESSING_DEFAULTS = Blessing()
SERVING_DEFAULTS = ServingSettings()


class OptionError(ValueError):
    """A command-line option with a value outside its allowed range; the message says which."""


@dataclasses.dataclass(frozen=True)
class SharedSettings:
    """The validated settings of the shared options."""

    hparams: HParams
    blessing: Blessing
    serving: ServingSettings
    eval_fraction: float
    split_by: str  # "image" or "identity"; "" = the data format's default
    report_examples: int


def option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _format_value(value) -> str:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return repr(value)
    return str(value)


def option_error(error: SettingError) -> OptionError:
    if error.value is True:  # A switch: its name says it all.
        return OptionError(f"{option_name(error.name)}: {error.allowed}")
    return OptionError(f"{option_name(error.name)} {_format_value(error.value)}: {error.allowed}")


def check_data(data: str, split_by: str = "") -> None:
    """The --data path, as far as a directory listing can tell (see dataset_check), and
    whether --split-by applies to its format."""
    from components.example_gen.dataset_check import DatasetError, check_data

    try:
        data_format = check_data(data)
    except DatasetError as error:
        raise OptionError(f"--data {error}") from None
    if data_format:  # Remote paths: the format is known only to ExampleGen.
        try:
            check_split_by(data_format, split_by)
        except ValueError as error:
            raise OptionError(str(error)) from None


def add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--eval-fraction",
        type=float,
        default=configs.DEFAULT_EVAL_FRACTION,
        help="share of images in eval for folder and TFRecord data, between 0 and 1 "
        "(default %(default)s; IDX data keeps its train/t10k files)",
    )
    group.add_argument(
        "--split-by",
        choices=SPLIT_BY,
        default="",
        help="how folder and TFRecord data is split into train and eval: identity (all images "
        "of an identity in one split, so eval measures people never seen in training: "
        "open-set) or image (eval holds new images of identities in train: closed-set). "
        "Default: identity for identity folders, image for TFRecords; IDX data keeps its "
        "train/t10k files",
    )


def add_blessing_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("blessing (Evaluator)")
    group.add_argument(
        "--gating-metric",
        default=BLESSING_DEFAULTS.gating_metric,
        choices=gating_metric_names(),
        help="eval metric that decides the blessing (default %(default)s)",
    )
    group.add_argument(
        "--lower-bound",
        type=float,
        default=BLESSING_DEFAULTS.lower_bound,
        help="bless (and push) only when the gating metric is at least this, 0 to 1 "
        "(default %(default)s)",
    )
    group.add_argument(
        "--max-regression",
        type=float,
        default=BLESSING_DEFAULTS.max_regression,
        help="refuse a model whose gating metric is more than this below the baseline's (the "
        "model served now), 0 to 1 (default %(default)s; the first run is judged by the "
        "other thresholds only)",
    )
    group.add_argument(
        "--floor-margin",
        type=float,
        default=BLESSING_DEFAULTS.floor_margin,
        help="refuse a model whose map_at_r does not beat raw pixels (the no-learning "
        "reference, on the same eval images) by at least this, -1 to 1 (default %(default)s)",
    )
    group.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare the model with the raw-pixel reference (--no-floor: do not)",
    )


def add_report_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("report")
    group.add_argument(
        "--report-examples",
        type=int,
        default=configs.DEFAULT_REPORT_EXAMPLES,
        help="eval examples embedded for the figures and projector, at least 1 "
        "(default %(default)s)",
    )


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
        help="embedding network: cnn (conv blocks with batch norm, a layer-normed dense head; "
        "for small images), "
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
        help="batches per epoch; 0 = one pass over the train images, or enough steps for "
        "--min-training-steps, whichever is more (default)",
    )
    group.add_argument(
        "--min-training-steps",
        type=int,
        default=DEFAULTS.min_training_steps,
        help="with --steps-per-epoch 0: epochs are lengthened so that training runs at least "
        "this many steps (small data: one pass is a few steps) (default %(default)s)",
    )
    group.add_argument(
        "--learning-rate",
        type=float,
        default=DEFAULTS.learning_rate,
        help="Adam learning rate; the peak of the cosine schedule (default %(default)s)",
    )
    group.add_argument(
        "--weight-decay",
        type=float,
        default=DEFAULTS.weight_decay,
        help="decoupled weight decay (AdamW) per unit of learning rate; norms and biases "
        "excluded; 0 = plain Adam (default %(default)s)",
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
        help="stop after this many epochs without a better validation metric "
        "(--selection-metric); the best epoch is kept either way; 0 = run every epoch "
        "(default %(default)s)",
    )
    group.add_argument(
        "--stop-when-satisfied",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.stop_when_satisfied,
        help="stop after an epoch with no active triplet (the loss is 0 on every training "
        "batch, so more epochs would not change the weights) and re-estimate batch norm",
    )
    group.add_argument(
        "--validation-fraction",
        type=float,
        default=DEFAULTS.validation_fraction,
        help="share of the train split held back from training, by identity with an identity "
        "split (and 20+ identities), else by image, capped at "
        f"{DEFAULTS.validation_max_images} images; each epoch is scored on it and the best "
        "kept; 0 = no slice, keep the last epoch (default %(default)s)",
    )
    group.add_argument(
        "--validation-min-train-images",
        type=int,
        default=DEFAULTS.validation_min_train_images,
        help="a train split with fewer images gets no validation slice: it trains on all of "
        "them and keeps the last epoch (default %(default)s)",
    )
    group.add_argument(
        "--selection-metric",
        choices=SELECTION_METRICS,
        default=DEFAULTS.selection_metric,
        help="validation retrieval metric that picks the epoch (default %(default)s)",
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


def add_serving_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("serving (verify and identify signatures)")
    group.add_argument(
        "--far",
        type=float,
        default=SERVING_DEFAULTS.far,
        help="false accept rate at which the verify/identify threshold is calibrated on the "
        "eval split's pairs, between 0 and 1; falls back to a larger FAR when there are too "
        "few pairs (default %(default)s)",
    )
    group.add_argument(
        "--top-k",
        type=int,
        default=SERVING_DEFAULTS.top_k,
        help="nearest gallery entries identify returns (default %(default)s)",
    )
    gallery = group.add_mutually_exclusive_group()
    gallery.add_argument(
        "--gallery",
        default=SERVING_DEFAULTS.gallery,
        metavar="PATH",
        help="dataset (any --data format) whose identities identify searches; "
        "default: the train split",
    )
    gallery.add_argument(
        "--no-gallery",
        action="store_true",
        help="no gallery: the served model has no identify signature",
    )
    group.add_argument(
        "--gallery-mode",
        choices=GALLERY_MODES,
        default=SERVING_DEFAULTS.gallery_mode,
        help="one gallery entry per image, or one mean embedding per identity "
        "(default %(default)s)",
    )
    group.add_argument(
        "--max-gallery",
        type=int,
        default=SERVING_DEFAULTS.max_gallery,
        help="most gallery entries kept; more are cut to a random subset with a warning "
        "(default %(default)s)",
    )
    group.add_argument(
        "--max-image-pixels",
        type=int,
        default=SERVING_DEFAULTS.max_image_pixels,
        help="the served model refuses images whose header declares more pixels, before "
        "decoding them (default %(default)s)",
    )


# The groups `run` and `compile kubeflow` both take; append a group here to share it.
SHARED_OPTION_GROUPS = (
    add_data_options,
    add_blessing_options,
    add_serving_options,
    add_report_options,
    add_training_options,
)


def add_shared_options(parser: argparse.ArgumentParser) -> None:
    for add_group in SHARED_OPTION_GROUPS:
        add_group(parser)


def hparams_from(args: argparse.Namespace) -> HParams:
    # validation_by is not an option: the pipeline sets it from --split-by.
    names = [f.name for f in dataclasses.fields(HParams) if hasattr(args, f.name)]
    try:
        return HParams(**{name: getattr(args, name) for name in names})
    except SettingError as error:
        raise option_error(error) from None


def blessing_from(args: argparse.Namespace) -> Blessing:
    try:
        return Blessing(
            gating_metric=args.gating_metric,
            lower_bound=args.lower_bound,
            max_regression=args.max_regression,
            floor_margin=args.floor_margin if args.floor else None,
        )
    except SettingError as error:
        raise option_error(error) from None


def serving_from(args: argparse.Namespace) -> ServingSettings:
    try:
        return ServingSettings(
            far=args.far,
            top_k=args.top_k,
            gallery=args.gallery,
            with_gallery=not args.no_gallery,
            gallery_mode=args.gallery_mode,
            max_gallery=args.max_gallery,
            max_image_pixels=args.max_image_pixels,
        )
    except SettingError as error:
        raise option_error(error) from None


def settings_from(args: argparse.Namespace) -> SharedSettings:
    """Every shared option checked; raises OptionError for the first bad one."""
    try:
        check_float("eval_fraction", args.eval_fraction, 0.0, 1.0, low_open=True, high_open=True)
        check_int("report_examples", args.report_examples, 1)
    except SettingError as error:
        raise option_error(error) from None
    return SharedSettings(
        hparams=hparams_from(args),
        blessing=blessing_from(args),
        serving=serving_from(args),
        eval_fraction=args.eval_fraction,
        split_by=args.split_by,
        report_examples=args.report_examples,
    )
