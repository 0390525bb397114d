"""Serving settings: calibration FAR, gallery and top-k of `identify`, the image pixel limit.

No TensorFlow here: the command line validates these before its heavy imports.
"""

import dataclasses
import json

from components.settings import SettingError, check_fields, from_config, setting

GALLERY_MODES = ("images", "centroids")
TRAIN_SPLIT_GALLERY = ""  # `gallery` value meaning: the pipeline's own train split.
# FARs above the target that the Evaluator also reports, for the fallback when the eval split
# has too few negative pairs to measure the target FAR.
FALLBACK_FARS = (1e-3, 1e-2, 1e-1)


@dataclasses.dataclass(frozen=True)
class ServingSettings:
    """ServingModel's settings; each field's range and help are written once, in the field."""

    far: float = setting(
        1e-3,
        "false accept rate at which the verify/identify threshold is calibrated on the eval "
        "split's pairs; falls back to a larger FAR when there are too few pairs",
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
    )
    top_k: int = setting(5, "nearest gallery entries identify returns", low=1)
    gallery: str = setting(
        TRAIN_SPLIT_GALLERY,
        "dataset (any --data format) whose identities identify searches; default: the train split",
        metavar="PATH",
        exclusive="gallery",
    )
    with_gallery: bool = setting(
        True,
        "no gallery: the served model has no identify signature",
        flag="--no-gallery",
        off_switch=True,
        exclusive="gallery",
    )
    gallery_mode: str = setting(
        "images",
        "one gallery entry per image, or one mean embedding per identity (centroids)",
        choices=GALLERY_MODES,
    )
    max_gallery: int = setting(
        1_000_000,
        "most gallery entries kept; more are cut to a random subset with a warning",
        low=1,
    )
    max_image_pixels: int = setting(
        16_000_000,
        "the served model refuses images whose header declares more pixels, before decoding them",
        low=1,
    )
    ledger_dir: str = setting(
        "",
        "the Pusher's serving dir, whose gallery ledger (enrolled and forgotten people) applies",
        command_line=False,
    )

    def __post_init__(self):
        check_fields(self)
        if self.gallery and not self.with_gallery:
            raise SettingError("with_gallery", True, f"--gallery {self.gallery} asks for one")

    def far_targets(self) -> tuple[float, ...]:
        """FARs the Evaluator reports a threshold for: the target, then the fallbacks above it."""
        return (float(self.far), *(f for f in FALLBACK_FARS if f > self.far * (1 + 1e-9)))

    def calibration_far(self, negative_pairs: int) -> float:
        """The target FAR, or the smallest reported FAR the negative pairs can measure."""
        supported = [f for f in self.far_targets() if f * negative_pairs >= 1.0]
        return min(supported) if supported else self.far_targets()[-1]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ServingSettings":
        return from_config(cls, json.loads(text) if text else {}, "serving settings")
