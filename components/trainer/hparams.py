"""Training hyperparameters, read from the Trainer's custom_config.

The defaults were chosen on five datasets, not one (benchmarks/RESULTS.md): digits,
Yale faces, 5,000 and 60,000 Fashion-MNIST images, and open-set Fashion-MNIST. A 3-block conv
net (batch norm in the convs, layer norm in the dense head), online semi-hard mining over 10 x 24
class-balanced batches, margin 0.5, Adam with 2e-3 peak, linear warm-up and cosine decay, 12
epochs of one pass each but at least 600 steps in all, stopping once an epoch's loss is 0
(batch norm then re-estimated), model selection on a validation slice of train splits of
10,000+ images, bfloat16 mixed precision where the CPU has bf16 units.
"""

import dataclasses

from components.evaluator import embedding_metrics as em
from components.example_gen.split_modes import SPLIT_BY
from components.settings import SettingError, check_fields, check_int, from_config, setting

MODELS = ("cnn", "mlp", "resnet", "plain")
RANDOM = "random"  # The notebook's explicit random triplets; the others mine P x K batches.
STRATEGIES = ("semi_hard", "batch_hard", "batch_all", RANDOM)
TRIPLET = "triplet"  # The loss of --triplet-strategy; the others are losses of their own.
LOSSES = (TRIPLET, "multi_similarity", "margin", "arcface")
# Settings of the triplet loss alone: another loss leaves them at their defaults.
TRIPLET_SETTINGS = ("triplet_strategy", "margin", "squared_distance", "soft_margin")
LR_SCHEDULES = ("cosine", "constant")
MIXED_PRECISION = ("auto", "off", "float16", "bfloat16")
SELECTION_METRICS = (em.MAP_AT_R, em.PRECISION_AT_1, em.R_PRECISION)  # validation, per epoch
VALIDATION_BY = SPLIT_BY  # The validation slice is held back like the eval split: image/identity
# Holding the validation slice back by identity: at least 2 held (one would rank every epoch
# alike), and 3 left to train on.
MIN_HELD_IDENTITIES = 2
MIN_IDENTITIES_BY_IDENTITY = MIN_HELD_IDENTITIES + 3
# Three conv blocks halve the image down to 8x8 at most; smaller images leave nothing to learn.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024


@dataclasses.dataclass(frozen=True)
class HParams:
    """The Trainer's settings; each field's range and help are written once, in the field."""

    image_size: int = setting(
        28, "images are resized to SIZE x SIZE", low=MIN_IMAGE_SIZE, high=MAX_IMAGE_SIZE
    )
    channels: int = setting(1, "1 for grey, 3 for RGB; inputs are converted", choices=(1, 3))
    model: str = setting(
        "cnn",
        "embedding network: cnn (conv blocks with batch norm, a layer-normed dense head; for "
        "small images), resnet (a small residual net for larger RGB images, e.g. 64x64 or "
        "96x96 faces), mlp (the original notebook's Dense(64, relu) -> Dense(D, sigmoid)) or "
        "plain (2 convs, no batch norm: a benchmark reference)",
        choices=MODELS,
    )
    # Filters of the first conv block (cnn) or residual stage (resnet); doubled per stage.
    width: int = setting(
        32, "filters of the first cnn block / resnet stage, doubled per stage", low=1, high=1024
    )
    embedding_dim: int = setting(64, "embedding size D", low=2, high=4096)
    # Open-set data (benchmarks/RESULTS.md): trained on six classes, the features below the
    # dense layers tell apart classes never trained on better than the embedding above them.
    projection_head: bool = setting(
        False,
        "train the loss through the dense layers (a projection head, as in SimCLR) but serve "
        "the L2-normalised conv features below them (3x3x128 = 1152 values at 28x28): for "
        "open-set data from few training identities; not with --model mlp",
    )
    # Each loss but triplet is one pure function (multi_similarity_loss.py, margin_loss.py,
    # arcface_loss.py) with its paper's defaults; all train on P x K batches.
    loss: str = setting(
        TRIPLET,
        "training loss: triplet (mined by --triplet-strategy, with --margin), multi_similarity "
        "(Wang et al. 2019: mined, softly weighted pairs), margin (Wu et al. 2017: margin loss "
        "with distance-weighted negative sampling) or arcface (Deng et al. 2019: additive "
        "angular margin over a class-weight head of the training identities, dropped at export)",
        choices=LOSSES,
    )
    # semi_hard / batch_hard / batch_all mine P x K batches; random is the notebook's method.
    triplet_strategy: str = setting(
        "semi_hard",
        "online mining in P x K batches: semi_hard (FaceNet), batch_hard (Hermans et al.), "
        "batch_all; or random: the notebook's random triplets through a three-branch siamese "
        "network with its mean-squared-difference loss",
        choices=STRATEGIES,
    )
    # Unit-norm embeddings lie at most 2 apart (4 squared): a larger margin cannot be met.
    margin: float = setting(0.5, "triplet loss margin", low=0.0, high=4.0, low_open=True)
    squared_distance: bool = setting(False, "mine and penalise squared Euclidean distances")
    soft_margin: bool = setting(False, "softplus instead of a hinge with margin (not batch_all)")
    # P x K: tuned on Fashion-MNIST (10 classes; P is capped at the trainable identities).
    # For many identities with few images each (faces), use e.g. P = 32, K = 4.
    identities_per_batch: int = setting(
        10,
        "P different identities in each class-balanced batch; at most the number of identities",
        low=1,
    )
    images_per_identity: int = setting(24, "K images of each identity in a batch", low=1)
    triplets_per_batch: int = setting(
        1024, "random strategy: triplets (3 images each) per batch", low=1
    )
    epochs: int = setting(12, "training epochs", low=1, high=100_000)
    # The training budget counts steps, not passes: one pass over 5,000 images is 20 steps, and
    # 12 of them leave the network untrained (benchmarks/RESULTS.md). With steps_per_epoch 0 an
    # epoch is one pass over the training images (anchors for random) or as many steps as
    # min_training_steps needs over all epochs, whichever is more (`epoch_steps`).
    steps_per_epoch: int = setting(
        0,
        "batches per epoch; 0 = one pass over the train images, or enough steps for "
        "--min-training-steps, whichever is more",
        low=0,
    )
    min_training_steps: int = setting(
        600,
        "with --steps-per-epoch 0: epochs are lengthened so that training runs at least this "
        "many steps (small data: one pass is a few steps)",
        low=0,
    )
    learning_rate: float = setting(
        2e-3,
        "Adam learning rate; the peak of the cosine schedule",
        low=0.0,
        high=1.0,
        low_open=True,
    )
    # Decoupled weight decay (AdamW) when > 0: each step shrinks the weights by
    # learning rate x weight_decay (normalisation layers and biases excluded).
    weight_decay: float = setting(
        0.0,
        "decoupled weight decay (AdamW) per unit of learning rate; norms and biases excluded; "
        "0 = plain Adam",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    lr_schedule: str = setting(
        "cosine",
        "cosine: linear warm-up, then cosine decay to 0 at the last step; or constant",
        choices=LR_SCHEDULES,
    )
    warmup_epochs: float = setting(0.5, "length of the linear warm-up, in epochs", low=0.0)
    augment: bool = setting(False, "random shifts of the training images")
    augment_shift: float = setting(
        0.1, "with --augment: largest shift, a fraction of the image size", low=0.0, high=0.5
    )
    augment_flip: bool = setting(
        False,
        "with --augment: also random left-right flips; for faces, not for digits or clothes",
    )
    # Model selection (validation.py, selection.py): a slice of the train split held back,
    # by image or by identity (the pipeline sets validation_by from --split-by); each epoch's
    # retrieval metrics on it pick the epoch kept; patience: epochs without improvement before
    # stopping (0 = train every epoch, still keep the best).
    early_stopping_patience: int = setting(
        3,
        "stop after this many epochs without a better validation metric (--selection-metric); "
        "the best epoch is kept either way; 0 = run every epoch",
        low=0,
    )
    # Stop once an epoch has no active triplet (the loss is 0 on every training batch: more
    # epochs would not change the weights) and re-estimate batch norm (satisfied.py).
    stop_when_satisfied: bool = setting(
        True,
        "stop after an epoch with no active triplet (the loss is 0 on every training batch, so "
        "more epochs would not change the weights) and re-estimate batch norm",
    )
    validation_fraction: float = setting(
        0.1,
        "share of the train split held back from training, by identity with an identity split "
        "(and 20+ identities), else by image, capped at 2000 images; each epoch is scored on "
        "it and the best kept; 0 = no slice, keep the last epoch",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    validation_max_images: int = setting(
        2000, "most images in the validation slice", low=1, command_line=False
    )
    # Smaller train splits get no slice: they train on every image for the step budget and
    # keep the last epoch (on digits, Yale and 5,000 Fashion images that beat holding 10% back).
    validation_min_train_images: int = setting(
        10_000,
        "a train split with fewer images gets no validation slice: it trains on all of them "
        "and keeps the last epoch",
        low=0,
    )
    # Few identities held back by identity: two of six classes leave four to train on, but the
    # epoch is then picked on classes the model never saw, as the open-set eval split judges it.
    validation_min_identities: int = setting(
        20,
        "an identity split holds its validation slice back by whole identities from this many "
        "trainable identities (2 held back, at least 3 left to train), else by image",
        low=MIN_IDENTITIES_BY_IDENTITY,
    )
    # The validation slice is held back like the eval split: the pipeline sets it from the
    # split mode, by image or by identity.
    validation_by: str = setting(
        "image",
        "how the validation slice is held back",
        choices=VALIDATION_BY,
        command_line=False,
    )
    selection_metric: str = setting(
        em.MAP_AT_R, "validation retrieval metric that picks the epoch", choices=SELECTION_METRICS
    )
    backup_dir: str = setting(
        "",
        "where training backs itself up each epoch, so that a re-run of a killed Trainer "
        "resumes; default: under the pipeline root, keyed by a hash of the inputs and settings",
    )
    mixed_precision: str = setting(
        "auto",
        "auto: float16 on a GPU, bfloat16 on a CPU with bfloat16 units, else off",
        choices=MIXED_PRECISION,
    )
    seed: int = setting(42, "random seed", low=0, high=2**31 - 1)

    def __post_init__(self):
        """Every field within its range, so a bad value fails here and not deep in training."""
        check_fields(self)
        if not self.explicit_triplets:  # Online mining needs pairs.
            check_int("identities_per_batch", self.identities_per_batch, 2)
            check_int("images_per_identity", self.images_per_identity, 2)
        if self.projection_head and self.model == "mlp":
            raise SettingError(
                "projection_head", True, "needs a conv encoder: --model cnn, resnet or plain"
            )
        if self.triplet_strategy == "batch_all" and self.soft_margin:
            raise SettingError(
                "soft_margin", True, "batch_all supports the hard margin only (drop --soft-margin)"
            )
        if self.loss != TRIPLET:
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            for name in TRIPLET_SETTINGS:
                if getattr(self, name) != defaults[name]:
                    raise SettingError(
                        name,
                        getattr(self, name),
                        f"a triplet loss setting; --loss {self.loss} does not use it (leave it "
                        "at its default)",
                    )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the images the network takes."""
        return (self.image_size, self.image_size, self.channels)

    @property
    def explicit_triplets(self) -> bool:
        """Whether batches are explicit (anchor, positive, negative) triplets (the notebook's
        random strategy) rather than P x K batches mined online."""
        return self.triplet_strategy == RANDOM

    @property
    def batch_size(self) -> int:
        """Examples per training step: P x K images, or triplets for the random strategy."""
        if self.explicit_triplets:
            return self.triplets_per_batch
        return self.identities_per_batch * self.images_per_identity

    @property
    def images_per_step(self) -> int:
        """Images the network embeds per training step (3 per triplet for random)."""
        return 3 * self.batch_size if self.explicit_triplets else self.batch_size

    def epoch_steps(self, train_images: int) -> int:
        """Training steps in one epoch: `steps_per_epoch` when set, else one pass over
        `train_images` or min_training_steps / epochs (rounded up), whichever is more."""
        if self.steps_per_epoch:
            return self.steps_per_epoch
        one_pass = max(1, train_images // self.batch_size)
        return max(one_pass, -(-self.min_training_steps // self.epochs))

    @classmethod
    def from_config(cls, config: dict | None) -> "HParams":
        return from_config(cls, config, "hyperparameters")

    def to_config(self) -> dict:
        return dataclasses.asdict(self)
