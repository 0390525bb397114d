"""Serving settings: calibration FAR, gallery and top-k of `identify`, the image pixel limit.

No TensorFlow here: the command line validates these before its heavy imports.
"""

import dataclasses
import json

from components.settings import check_choice, check_float, check_int

GALLERY_MODES = ("images", "centroids")
TRAIN_SPLIT_GALLERY = ""  # `gallery` value meaning: the pipeline's own train split.
# FARs above the target that the Evaluator also reports, for the fallback when the eval split
# has too few negative pairs to measure the target FAR.
FALLBACK_FARS = (1e-3, 1e-2, 1e-1)


@dataclasses.dataclass(frozen=True)
class ServingSettings:
    far: float = 1e-3  # Target false accept rate of `verify` / `identify`'s `known`.
    top_k: int = 5  # Nearest gallery entries `identify` returns.
    gallery: str = TRAIN_SPLIT_GALLERY  # "" = train split; else a dataset path (any format).
    with_gallery: bool = True  # False: no gallery, no `identify` signature.
    gallery_mode: str = "images"  # One entry per image, or one L2-normalised centroid per identity.
    max_gallery: int = 100_000  # Entries kept; larger galleries are cut with a warning.
    max_image_pixels: int = 16_000_000  # Served images declaring more pixels are refused.

    def __post_init__(self):
        check_float("far", self.far, 0.0, 1.0, low_open=True, high_open=True)
        check_choice("gallery_mode", self.gallery_mode, GALLERY_MODES)
        for name in ("top_k", "max_gallery", "max_image_pixels"):
            check_int(name, getattr(self, name), 1)
        if self.gallery and not self.with_gallery:
            raise ValueError(f"gallery {self.gallery!r} given but with_gallery is False")

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
        config = json.loads(text) if text else {}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(config) - names
        if unknown:
            raise ValueError(f"unknown serving settings {sorted(unknown)}; known: {sorted(names)}")
        return cls(**config)
