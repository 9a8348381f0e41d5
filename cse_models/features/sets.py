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
from cse_models.features.trailing import lagged, trailing_mean, trailing_means, trailing_std
from cse_models.registry import Registry

KlineColumns = Mapping[str, np.ndarray]
"""open_time (int64 unix ms), open, high, low, close, volume (float64), oldest row first."""


@dataclass(frozen=True)
class FeatureSet:
    name: str
    feature_names: tuple[str, ...]
    warmup: int
    compute: Callable[[KlineColumns], np.ndarray]
    description: str = ""

    def __call__(self, klines: KlineColumns) -> np.ndarray:
        """→ float64 `[rows, len(feature_names)]`; rows < warmup are NaN-free only after `warmup`."""
        missing = [c for c in ("open_time", "open", "high", "low", "close") if c not in klines]
        if missing:
            raise DataError(f"feature set {self.name!r} needs kline column(s) {missing}")
        return self.compute(klines)

    @property
    def level_free(self) -> bool:
        """No feature depends on the price level: the set can follow prices outside its training range."""
        return not {"open", "high", "low", "close"} & set(self.feature_names)


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


_MS_PER_HOUR = 3_600_000
RANGE_FLOOR = 1e-8  # high == low gives a range of 0, whose log would be −inf
SHORT, LONG = 24, 168  # trailing windows in rows: a day and a week of hourly candles


def _stationary(k: KlineColumns) -> np.ndarray:
    """Level-free features: every price enters as a ratio of two prices, so multiplying all prices by any
    constant leaves each value unchanged. Volume is a z-score of log(1 + volume) against its own trailing
    week, so its unit does not matter either."""
    close = np.asarray(k["close"], dtype=np.float64)
    opn = np.asarray(k["open"], dtype=np.float64)
    high = np.asarray(k["high"], dtype=np.float64)
    low = np.asarray(k["low"], dtype=np.float64)
    log_close = np.log(close)
    log_return = log_close - lagged(log_close, 1)
    log_range = np.log(high / low)
    range_24, range_168 = trailing_means(log_range, (SHORT, LONG))
    volume = np.asarray(k["volume"], dtype=np.float64) if "volume" in k else np.zeros_like(close)
    volume = np.log1p(np.maximum(volume, 0.0))
    volume_sd = trailing_std(volume, LONG)
    with np.errstate(invalid="ignore", divide="ignore"):
        volume_z = np.where(volume_sd > 0, (volume - trailing_mean(volume, LONG)) / volume_sd, 0.0)
    volume_z[: LONG - 1] = np.nan
    rv_24, rv_168 = trailing_means(log_return**2, (SHORT, LONG))
    hours, days = _hour_and_weekday(np.asarray(k["open_time"], dtype=np.int64))
    return _columns(
        [
            log_return,
            log_range,
            range_24,
            range_168,
            np.log(np.maximum(log_range, RANGE_FLOOR) / np.maximum(range_24, RANGE_FLOOR)),
            np.log(np.maximum(range_24, RANGE_FLOOR) / np.maximum(range_168, RANGE_FLOOR)),
            (close - opn) / close,
            volume_z,
            np.sqrt(rv_24),
            np.sqrt(rv_168),
            log_close - lagged(log_close, SHORT),
            log_close - lagged(log_close, LONG),
            _HOUR_SIN[hours],
            _HOUR_COS[hours],
            _DAY_SIN[days],
            _DAY_COS[days],
        ]
    )


def _hour_and_weekday(open_time_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hour of day (0–23) and day of week (Monday = 0) of unix-ms times. Floor divisions by a constant only
    (numpy runs those through libdivide; `%` and divmod take a slow generic loop): the hour count's floor
    division by 24 is the day count, and x mod m = x − (x // m) · m."""
    hour_count = open_time_ms // _MS_PER_HOUR
    day_count = hour_count // 24
    weekday = day_count + 3  # 1970-01-01 was a Thursday
    return hour_count - day_count * 24, weekday - weekday // 7 * 7


# sin/cos of the 24 hours and 7 weekdays, gathered per row: the same numbers as computing them row by row
_HOUR_SIN, _HOUR_COS = np.sin(2 * np.pi * np.arange(24) / 24), np.cos(2 * np.pi * np.arange(24) / 24)
_DAY_SIN, _DAY_COS = np.sin(2 * np.pi * np.arange(7) / 7), np.cos(2 * np.pi * np.arange(7) / 7)


FEATURE_SETS.add(
    "stationary",
    FeatureSet(
        name="stationary",
        feature_names=(
            "log_return",
            "log_range",
            "range_mean_24",
            "range_mean_168",
            "range_ratio_24",
            "range_ratio_168",
            "body",
            "volume_z",
            "rv_24",
            "rv_168",
            "momentum_24",
            "momentum_168",
            "hour_sin",
            "hour_cos",
            "dow_sin",
            "dow_cos",
        ),
        warmup=LONG,  # rv_168 and momentum_168 need 168 past log returns, i.e. 169 closes
        compute=_stationary,
        description="level-free: log returns, log(high/low), its 24 h / 168 h means and their log ratios (the HAR "
        "terms in the log space the volatility head predicts in), body, volume z-score, "
        "realized volatility and momentum over 24 h / 168 h, hour of day and day of week as sin/cos",
    ),
)


def get_feature_set(name: str) -> FeatureSet:
    return FEATURE_SETS.get(name)
