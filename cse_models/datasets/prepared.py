"""A series prepared for learning: its train / val / test segments, the data configuration that cut them
and the scaler fit on the train rows — the three things every member kind trains on, calibration reads
and validation scores against, passed together so no function can pair a scaler with another series'
segments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cse_models.config import DataConfig
from cse_models.datasets.segments import SplitArrays
from cse_models.errors import DataError
from cse_models.features.scaling import FittedScaler


@dataclass(frozen=True)
class PreparedSeries:
    segments: Mapping[str, SplitArrays]
    config: DataConfig
    scaler: FittedScaler

    def __post_init__(self) -> None:
        missing = [name for name in ("train", "val") if name not in self.segments]
        if missing:
            raise DataError(
                f"a prepared series needs its {' and '.join(missing)} segment(s); has {sorted(self.segments)}"
            )

    @property
    def train(self) -> SplitArrays:
        return self.segments["train"]

    @property
    def val(self) -> SplitArrays:
        return self.segments["val"]

    @property
    def test(self) -> SplitArrays:
        return self.segments["test"]
