"""Configuration as frozen dataclasses: defaults make the demo work; validation names the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cse_models.errors import ConfigError
from cse_models.features.split import SplitConfig

Task = Literal["regression", "classification"]
TASKS = ("regression", "classification")


@dataclass(frozen=True)
class DataConfig:
    """What the model sees: which features, how long a window, how far ahead, how scaled and split."""

    feature_set: str = "mur9"
    seq_len: int = 24
    horizon: int = 1
    task: Task = "regression"
    scaler: str = "minmax"
    hold_band: float = 0.002  # classification: |next return| ≤ band is Hold
    split: SplitConfig = field(default_factory=SplitConfig)

    def __post_init__(self) -> None:
        if self.seq_len < 2:
            raise ConfigError(f"seq_len must be ≥ 2, got {self.seq_len}")
        if self.horizon < 1:
            raise ConfigError(f"horizon must be ≥ 1, got {self.horizon}")
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.hold_band < 0:
            raise ConfigError(f"hold_band must be ≥ 0, got {self.hold_band}")

    @property
    def purge(self) -> int:
        return self.seq_len if self.split.purge is None else self.split.purge
