"""Training hyperparameters, read from the Trainer's custom_config."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class HParams:
    image_size: int = 28
    channels: int = 1
    model: str = "cnn"
    embedding_dim: int = 64
    triplet_strategy: str = "semi_hard"
    margin: float = 0.2
    squared_distance: bool = False
    soft_margin: bool = False
    identities_per_batch: int = 16
    images_per_identity: int = 8
    epochs: int = 5
    steps_per_epoch: int = 0  # 0: one pass over the training images per epoch.
    learning_rate: float = 1e-3
    seed: int = 42

    @property
    def batch_size(self) -> int:
        return self.identities_per_batch * self.images_per_identity

    @classmethod
    def from_config(cls, config: dict | None) -> "HParams":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(config or {}) - names
        if unknown:
            raise ValueError(f"unknown hyperparameters {sorted(unknown)}; known: {sorted(names)}")
        return cls(**(config or {}))

    def to_config(self) -> dict:
        return dataclasses.asdict(self)
