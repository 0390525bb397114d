"""Training hyperparameters, read from the Trainer's custom_config.

The defaults were chosen on five datasets, not one (benchmarks/RESULTS.md, issue 9): digits,
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
from components.settings import SettingError, check_choice, check_float, check_int

MODELS = ("cnn", "mlp", "resnet", "plain")
STRATEGIES = ("semi_hard", "batch_hard", "batch_all", "random")
LR_SCHEDULES = ("cosine", "constant")
MIXED_PRECISION = ("auto", "off", "float16", "bfloat16")
SELECTION_METRICS = (em.MAP_AT_R, em.PRECISION_AT_1, em.R_PRECISION)  # validation, per epoch
VALIDATION_BY = SPLIT_BY  # The validation slice is held back like the eval split: image/identity
# Three conv blocks halve the image down to 8x8 at most; smaller images leave nothing to learn.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024


@dataclasses.dataclass(frozen=True)
class HParams:
    image_size: int = 28
    channels: int = 1
    model: str = "cnn"
    # Filters of the first conv block (cnn) or residual stage (resnet); doubled per stage.
    width: int = 32
    embedding_dim: int = 64
    # semi_hard / batch_hard / batch_all mine P x K batches; random is the notebook's method.
    triplet_strategy: str = "semi_hard"
    margin: float = 0.5
    squared_distance: bool = False
    soft_margin: bool = False
    # P x K: tuned on Fashion-MNIST (10 classes; P is capped at the trainable identities).
    # For many identities with few images each (faces), use e.g. P = 32, K = 4.
    identities_per_batch: int = 10
    images_per_identity: int = 24
    triplets_per_batch: int = 1024  # random strategy only: triplets (3 images each) per batch
    epochs: int = 12
    # The training budget counts steps, not passes: one pass over 5,000 images is 20 steps, and
    # 12 of them leave the network untrained (benchmarks/RESULTS.md). With steps_per_epoch 0 an
    # epoch is one pass over the training images (anchors for random) or as many steps as
    # min_training_steps needs over all epochs, whichever is more (`epoch_steps`).
    steps_per_epoch: int = 0
    min_training_steps: int = 600
    learning_rate: float = 2e-3  # Adam; the peak of the cosine schedule
    # Decoupled weight decay (AdamW) when > 0: each step shrinks the weights by
    # learning rate x weight_decay (normalisation layers and biases excluded).
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"  # linear warm-up then cosine decay to 0, or constant
    warmup_epochs: float = 0.5
    augment: bool = False  # random shifts of up to augment_shift of the image size
    augment_shift: float = 0.1
    augment_flip: bool = False  # also random left-right flips (faces; not digits or clothes)
    # Model selection (validation.py, selection.py): a slice of the train split held back,
    # by image or by identity (the pipeline sets validation_by from --split-by); each epoch's
    # retrieval metrics on it pick the epoch kept; patience: epochs without improvement before
    # stopping (0 = train every epoch, still keep the best).
    validation_fraction: float = 0.1  # 0 = no slice: train on all, keep the last epoch
    validation_max_images: int = 2000
    # Smaller train splits get no slice: they train on every image for the step budget and
    # keep the last epoch (on digits, Yale and 5,000 Fashion images that beat holding 10% back).
    validation_min_train_images: int = 10_000
    validation_by: str = "image"
    selection_metric: str = em.MAP_AT_R
    early_stopping_patience: int = 3
    # Stop once an epoch has no active triplet (the loss is 0 on every training batch: more
    # epochs would not change the weights) and re-estimate batch norm (satisfied.py).
    stop_when_satisfied: bool = True
    backup_dir: str = ""  # BackupAndRestore dir; "" = derived from the pipeline root + inputs
    mixed_precision: str = "auto"  # float16 on GPU, bfloat16 on CPUs with bf16 units, else off
    seed: int = 42

    def __post_init__(self):
        """Every field within its range, so a bad value fails here and not deep in training."""
        for name, choices in (
            ("model", MODELS),
            ("triplet_strategy", STRATEGIES),
            ("lr_schedule", LR_SCHEDULES),
            ("mixed_precision", MIXED_PRECISION),
            ("validation_by", VALIDATION_BY),
            ("selection_metric", SELECTION_METRICS),
        ):
            check_choice(name, getattr(self, name), choices)
        check_choice("channels", self.channels, (1, 3))
        check_int("image_size", self.image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        check_int("width", self.width, 1, 1024)
        check_int("embedding_dim", self.embedding_dim, 2, 4096)
        # Unit-norm embeddings lie at most 2 apart (4 squared): a larger margin cannot be met.
        check_float("margin", self.margin, 0.0, 4.0, low_open=True)
        pairs = 1 if self.triplet_strategy == "random" else 2  # online mining needs pairs
        check_int("identities_per_batch", self.identities_per_batch, pairs)
        check_int("images_per_identity", self.images_per_identity, pairs)
        check_int("triplets_per_batch", self.triplets_per_batch, 1)
        check_int("epochs", self.epochs, 1, 100_000)
        check_int("steps_per_epoch", self.steps_per_epoch, 0)
        check_int("min_training_steps", self.min_training_steps, 0)
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        check_float("weight_decay", self.weight_decay, 0.0, 1.0, high_open=True)
        check_float("warmup_epochs", self.warmup_epochs, 0.0)
        check_float("augment_shift", self.augment_shift, 0.0, 0.5)
        check_int("early_stopping_patience", self.early_stopping_patience, 0)
        check_float("validation_fraction", self.validation_fraction, 0.0, 1.0, high_open=True)
        check_int("validation_max_images", self.validation_max_images, 1)
        check_int("validation_min_train_images", self.validation_min_train_images, 0)
        check_int("seed", self.seed, 0, 2**31 - 1)
        if self.triplet_strategy == "batch_all" and self.soft_margin:
            raise SettingError(
                "soft_margin", True, "batch_all supports the hard margin only (drop --soft-margin)"
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the images the network takes."""
        return (self.image_size, self.image_size, self.channels)

    @property
    def batch_size(self) -> int:
        """Examples per training step: P x K images, or triplets for the random strategy."""
        if self.triplet_strategy == "random":
            return self.triplets_per_batch
        return self.identities_per_batch * self.images_per_identity

    @property
    def images_per_step(self) -> int:
        """Images the network embeds per training step (3 per triplet for random)."""
        return 3 * self.batch_size if self.triplet_strategy == "random" else self.batch_size

    def epoch_steps(self, train_images: int) -> int:
        """Training steps in one epoch: `steps_per_epoch` when set, else one pass over
        `train_images` or min_training_steps / epochs (rounded up), whichever is more."""
        if self.steps_per_epoch:
            return self.steps_per_epoch
        one_pass = max(1, train_images // self.batch_size)
        return max(one_pass, -(-self.min_training_steps // self.epochs))

    @classmethod
    def from_config(cls, config: dict | None) -> "HParams":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(config or {}) - names
        if unknown:
            raise ValueError(f"unknown hyperparameters {sorted(unknown)}; known: {sorted(names)}")
        return cls(**(config or {}))

    def to_config(self) -> dict:
        return dataclasses.asdict(self)
