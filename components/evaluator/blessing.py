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
from components.settings import SettingError, check_choice, check_float

DEFAULT_GATING_METRIC = em.PRECISION_AT_1
DEFAULT_LOWER_BOUND = 0.5  # Value threshold on the gating metric.
DEFAULT_MAX_REGRESSION = 0.01  # Largest allowed drop of the gating metric vs the baseline.
DEFAULT_FLOOR_MARGIN = 0.02  # map_at_r must beat the raw-pixel reference by this much.
FLOOR_METRIC = em.MAP_AT_R


@dataclasses.dataclass(frozen=True)
class Blessing:
    gating_metric: str = DEFAULT_GATING_METRIC
    lower_bound: float | None = DEFAULT_LOWER_BOUND
    max_regression: float | None = DEFAULT_MAX_REGRESSION
    # None: no floor; otherwise the least gain of map_at_r over the raw-pixel reference.
    floor_margin: float | None = DEFAULT_FLOOR_MARGIN

    def __post_init__(self):
        check_choice("gating_metric", self.gating_metric, em.gating_metric_names())
        # Every gating metric is a rate in [0, 1].
        if self.lower_bound is not None:
            check_float("lower_bound", self.lower_bound, 0.0, 1.0)
        if self.max_regression is not None:
            check_float("max_regression", self.max_regression, 0.0, 1.0)
        if self.floor_margin is not None:
            check_float("floor_margin", self.floor_margin, -1.0, 1.0)
        if self.lower_bound is None and self.max_regression is None and self.floor_margin is None:
            raise SettingError("lower_bound", None, "set a lower bound, a regression or a floor")

    def to_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict | None) -> "Blessing":
        return cls(**(config or {}))


DEFAULT_BLESSING = Blessing()
