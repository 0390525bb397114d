"""How a dataset is split into train and eval, and the one rule for which mode a format takes.

Light: the command line imports it before anything heavy.

* image: each example is hashed, so eval holds new images of identities also in train
  (closed-set evaluation);
* identity: the identity name is hashed, so all images of an identity land in one split and
  eval identities never appear in train: the Evaluator then measures verification and
  retrieval of people the model has never seen (open-set evaluation).

IDX (MNIST-format) data keeps its train/t10k files and takes no mode but `image`.
"""

import dataclasses

from components.example_gen.dataset_check import DIGITS, FOLDER, IDX, TFRECORD
from components.settings import SettingError, check_choice, check_fields, setting

SPLIT_BY_IMAGE = "image"
SPLIT_BY_IDENTITY = "identity"
SPLIT_BY = (SPLIT_BY_IMAGE, SPLIT_BY_IDENTITY)
FORMATS = (DIGITS, IDX, FOLDER, TFRECORD)
DEFAULT_EVAL_FRACTION = 0.2


def default_split_by(data_format: str) -> str:
    """identity for identity folders, image otherwise (IDX files keep their own split)."""
    return SPLIT_BY_IDENTITY if data_format == FOLDER else SPLIT_BY_IMAGE


def split_mode(data_format: str, split_by: str) -> str:
    """The split mode to use: `split_by`, or the format's default when it is empty; raises
    SettingError for a mode the format cannot take."""
    split_by = split_by or default_split_by(data_format)
    check_choice("split_by", split_by, SPLIT_BY)
    if data_format in (IDX, DIGITS) and split_by != SPLIT_BY_IMAGE:
        raise SettingError(
            "split_by",
            split_by,
            "applies to folder and TFRecord data; MNIST-format (IDX) data keeps its "
            "train/t10k files as the train/eval splits",
        )
    return split_by


@dataclasses.dataclass(frozen=True)
class Split:
    """How folder and TFRecord data is split; each field's range and help live in the field."""

    eval_fraction: float = setting(
        DEFAULT_EVAL_FRACTION,
        "share of images in eval for folder and TFRecord data (IDX data keeps its train/t10k "
        "files)",
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
    )
    split_by: str = setting(
        "",
        "how folder and TFRecord data is split into train and eval: identity (all images of an "
        "identity in one split, so eval measures people never seen in training: open-set) or "
        "image (eval holds new images of identities in train: closed-set). Default: identity "
        "for identity folders, image for TFRecords; IDX data keeps its train/t10k files",
        choices=SPLIT_BY,
    )

    def __post_init__(self):
        check_fields(self)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Where the images are, in which format, and how they split into train and eval.

    Made once the format is known (detected for `run`, given for `compile kubeflow`), so a
    split mode the format cannot take fails here, before anything starts.
    """

    path: str
    format: str
    split: Split = dataclasses.field(default_factory=Split)

    def __post_init__(self):
        check_choice("data_format", self.format, FORMATS)
        self.split_by  # noqa: B018 (checks the mode)

    @property
    def split_by(self) -> str:
        """ "image" or "identity": the mode ExampleGen splits by (and the validation slice)."""
        return split_mode(self.format, self.split.split_by)

    @property
    def eval_fraction(self) -> float:
        return self.split.eval_fraction
