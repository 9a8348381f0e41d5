"""Configuration as frozen dataclasses: defaults make the demo work; validation names the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cse_models.errors import ConfigError
from cse_models.features.split import SplitConfig

Task = Literal["regression", "classification", "forecast"]
TASKS = ("regression", "classification", "forecast")


@dataclass(frozen=True)
class DataConfig:
    """What the model sees: which features, how long a window, how far ahead, how scaled and split.

    The defaults are what cse trains and publishes: the multi-head `forecast` (price, interval, volatility,
    direction) on the level-free `stationary` set with robust scaling. `seed()` is the seeds' level task
    on `mur9` with min-max scaling, kept for parity with them (benchmarks, the seed-task tests)."""

    feature_set: str = "stationary"
    seq_len: int = 24
    horizon: int = 1
    task: Task = "forecast"
    scaler: str = "robust"
    hold_band: float = 0.002  # classification: |next return| ≤ band is Hold
    hold_band_sigmas: float = 0.5  # forecast: |next return| ≤ this many trailing σ·√h is Hold (≈ 35–40 %)
    interval_level: float = 0.8  # forecast: coverage of the central interval
    calibration_windows: int = 720  # forecast: the latest validation windows the interval is calibrated on
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
        if self.hold_band_sigmas < 0:
            raise ConfigError(f"hold_band_sigmas must be ≥ 0, got {self.hold_band_sigmas}")
        if not 0 < self.interval_level < 1:
            raise ConfigError(f"interval_level must be in (0, 1), got {self.interval_level}")
        if self.calibration_windows < 10:
            raise ConfigError(f"calibration_windows must be ≥ 10, got {self.calibration_windows}")

    @classmethod
    def seed(cls, **overrides) -> DataConfig:
        """The seeds' configuration: the next close as a level (`regression`) from `mur9`, min-max scaled."""
        return cls(**{"feature_set": "mur9", "task": "regression", "scaler": "minmax", **overrides})

    @property
    def purge(self) -> int:
        return self.seq_len if self.split.purge is None else self.split.purge
