"""Blessing settings: what the Evaluator requires of a model before the Pusher ships it.

Three gates, all on the eval split:
  * lower_bound: the gating metric (default precision_at_1) must reach this value;
  * max_regression: it may drop at most this much below the latest blessed model's;
  * floor_margin: map_at_r must beat a no-learning reference, raw pixels (the eval images
    decoded as the model's preprocessing does, flattened, L2-normalised), by this margin.

Why raw pixels and MAP@R (README, "Blessing"): a network with its initial weights is the other
natural reference, but it needs a second model in the Evaluator and its quality depends on the
architecture; raw pixels need nothing but the eval examples. Precision@1 cannot separate
learning from pixel matching (sklearn digits: raw pixels 0.96, a trained net 0.95), while
MAP@R ranks every same-identity image (raw pixels 0.54, trained 0.82, untrained net 0.36).
The default margin of 0.02 is above the run-to-run noise of MAP@R on a few hundred eval
images and far below the gain of any model that learned (0.28 on digits).
No TensorFlow here: the command line validates these before starting anything.
"""

import dataclasses

from components.evaluator import embedding_metrics as em
from components.settings import SettingError, check_fields, from_config, setting

FLOOR_METRIC = em.MAP_AT_R


@dataclasses.dataclass(frozen=True)
class Blessing:
    """The Evaluator's gates; each field's range and help are written once, in the field."""

    gating_metric: str = setting(
        em.PRECISION_AT_1, "eval metric that decides the blessing", choices=em.gating_metric_names()
    )
    # Every gating metric is a rate in [0, 1]. None: this gate is off.
    lower_bound: float | None = setting(
        0.5,
        "bless (and push) only when the gating metric is at least this",
        low=0.0,
        high=1.0,
        optional=True,
    )
    max_regression: float | None = setting(
        0.01,
        "refuse a model whose gating metric is more than this below the baseline's (the model "
        "served now; the first run is judged by the other thresholds only)",
        low=0.0,
        high=1.0,
        optional=True,
    )
    floor: bool = setting(True, "compare the model with the raw-pixel reference")
    # The least gain of map_at_r over the raw-pixel reference.
    floor_margin: float = setting(
        0.02,
        "refuse a model whose map_at_r does not beat raw pixels (the no-learning reference, on "
        "the same eval images) by at least this",
        low=-1.0,
        high=1.0,
    )

    def __post_init__(self):
        check_fields(self)
        if self.lower_bound is None and self.max_regression is None and not self.floor:
            raise SettingError("lower_bound", None, "set a lower bound, a regression or a floor")

    @property
    def floor_gain(self) -> float | None:
        """The least map_at_r gain over raw pixels the floor requires; None without a floor."""
        return self.floor_margin if self.floor else None

    def to_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict | None) -> "Blessing":
        return from_config(cls, config, "blessing settings")
