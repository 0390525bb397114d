"""How folder and TFRecord data is split into train and eval (light: the CLI imports it).

* image: each example is hashed, so eval holds new images of identities also in train
  (closed-set evaluation);
* identity: the identity name is hashed, so all images of an identity land in one split and
  eval identities never appear in train: the Evaluator then measures verification and
  retrieval of people the model has never seen (open-set evaluation).
"""

from components.example_gen.dataset_check import DIGITS, FOLDER, IDX

SPLIT_BY_IMAGE = "image"
SPLIT_BY_IDENTITY = "identity"
SPLIT_BY = (SPLIT_BY_IMAGE, SPLIT_BY_IDENTITY)


def default_split_by(data_format: str) -> str:
    """identity for identity folders, image otherwise (IDX files keep their own split)."""
    return SPLIT_BY_IDENTITY if data_format == FOLDER else SPLIT_BY_IMAGE


def check_split_by(data_format: str, split_by: str) -> str:
    """The split mode to use: `split_by`, or the format's default when it is empty."""
    split_by = split_by or default_split_by(data_format)
    if split_by not in SPLIT_BY:
        raise ValueError(f"split_by must be one of {SPLIT_BY}, got {split_by!r}")
    if data_format in (IDX, DIGITS) and split_by != SPLIT_BY_IMAGE:
        raise ValueError(
            f"--split-by {split_by}: applies to folder and TFRecord data; "
            "MNIST-format (IDX) data keeps its train/t10k files as the train/eval splits"
        )
    return split_by
