"""Named feature sets: one vectorized numpy implementation shared by training and serving.

A feature set maps kline columns (numpy arrays, oldest first) to a float matrix `[rows, features]`.
Serving calls the very same function on the 24-odd klines of a request, so there is no second
implementation to drift. Each set declares its warm-up: the first rows whose features are undefined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from cse_models.errors import DataError
from cse_models.features.calendar import calendar_fields
from cse_models.registry import Registry

KlineColumns = Mapping[str, np.ndarray]
"""open_time (int64 unix ms), open, high, low, close, volume (float64), oldest row first."""


@dataclass(frozen=True)
class FeatureSet:
    name: str
    feature_names: tuple[str, ...]
    warmup: int
    compute: Callable[[KlineColumns], np.ndarray]
    target_column: str = "close"
    description: str = ""

    def __call__(self, klines: KlineColumns) -> np.ndarray:
        """→ float64 `[rows, len(feature_names)]`; rows < warmup are NaN-free only after `warmup`."""
        missing = [c for c in ("open_time", "open", "high", "low", "close") if c not in klines]
        if missing:
            raise DataError(f"feature set {self.name!r} needs kline column(s) {missing}")
        return self.compute(klines)

    @property
    def target_index(self) -> int:
        return self.feature_names.index(self.target_column)


FEATURE_SETS: Registry[FeatureSet] = Registry("feature set")


def _columns(columns: list[np.ndarray]) -> np.ndarray:
    """Stack 1-D columns into float64 `[rows, f]`, column-major: each feature is one contiguous block, so
    the polars feature table is built from it without a transpose."""
    out = np.empty((len(columns[0]), len(columns)), dtype=np.float64, order="F")
    for i, column in enumerate(columns):
        out[:, i] = column
    return out


def _mur9(k: KlineColumns) -> np.ndarray:
    cal = calendar_fields(k["open_time"])
    close = np.asarray(k["close"], dtype=np.float64)
    opn = np.asarray(k["open"], dtype=np.float64)
    return _columns(
        [
            cal["day_of_week"],
            cal["day_of_month"],
            cal["week_of_year"],
            cal["month"],
            opn,
            k["high"],
            k["low"],
            close,
            close - opn,
        ]
    )


def _ohlc4(k: KlineColumns) -> np.ndarray:
    return _columns([k["open"], k["high"], k["low"], k["close"]])


FEATURE_SETS.add(
    "mur9",
    FeatureSet(
        name="mur9",
        feature_names=(
            "day_of_week",
            "day_of_month",
            "week_of_year",
            "month",
            "open",
            "high",
            "low",
            "close",
            "close_change",
        ),
        warmup=0,
        compute=_mur9,
        description="Make Us Rich: calendar fields, OHLC and close − open of the same candle",
    ),
)
FEATURE_SETS.add(
    "ohlc4",
    FeatureSet(
        name="ohlc4",
        feature_names=("open", "high", "low", "close"),
        warmup=0,
        compute=_ohlc4,
        description="CryptoSpreadEdge: open, high, low, close",
    ),
)


def get_feature_set(name: str) -> FeatureSet:
    return FEATURE_SETS.get(name)
