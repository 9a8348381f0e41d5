"""Per-window targets of every head, from raw closes, highs, lows and the raw feature rows.

A window of `seq_len` rows ends at row t = i + seq_len − 1 and targets row t + h. All targets are
stationary (returns and ratios), so they follow prices outside the training range:
  r = log(close[t+h] / close[t]),  σ = max(rv_24[t]·√h, SIGMA_FLOOR),  z = r / σ
  range = log(max high[t+1 … t+h] / min low[t+1 … t+h]),  ref = range_mean_24[t]·√h,  v = log(range / ref)
  label = Buy if z > b, Sell if z < −b, else Hold (b = hold_band_sigmas; the rule, shared with serving's
  live scorecard, is `heads.labels`).
√h: volatility of a random walk grows with the square root of the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from cse_models.errors import DataError
from cse_models.features.sets import RANGE_FLOOR
from cse_models.features.windows import CLASS_NAMES, n_windows
from cse_models.heads.labels import band_labels, horizon_sigma, log_returns
from cse_models.heads.scales import RANGE_FEATURE, SIGMA_FEATURE


@dataclass(frozen=True)
class HeadTargets:
    """What happened after each window `[n]`: the truth every head is scored against."""

    last_close: np.ndarray  # close[t]
    close: np.ndarray  # close[t + h]
    log_return: np.ndarray  # r
    sigma: np.ndarray  # σ·√h, the volatility scale of the horizon
    range: np.ndarray  # realized log(high/low) over the horizon
    range_ref: np.ndarray  # trailing mean range scaled to the horizon
    label: np.ndarray  # int32 Sell 0 / Hold 1 / Buy 2

    @property
    def z(self) -> np.ndarray:
        return self.log_return / self.sigma

    def take(self, windows: np.ndarray) -> HeadTargets:
        """The targets of the given windows only."""
        return HeadTargets(**{f.name: getattr(self, f.name)[windows] for f in fields(self)})

    @property
    def range_ratio(self) -> np.ndarray:
        return np.log(np.maximum(self.range, RANGE_FLOOR) / self.range_ref)


def horizon_range(high: np.ndarray, low: np.ndarray, rows: np.ndarray, horizon: int) -> np.ndarray:
    """log(max high / min low) over rows r − h + 1 … r for each target row r."""
    highs = np.lib.stride_tricks.sliding_window_view(high, horizon)[rows - horizon + 1].max(axis=1)
    lows = np.lib.stride_tricks.sliding_window_view(low, horizon)[rows - horizon + 1].min(axis=1)
    return np.log(highs / lows)


def _consecutive_horizon_range(high: np.ndarray, low: np.ndarray, first: int, count: int, horizon: int) -> np.ndarray:
    """`horizon_range` for the consecutive target rows first … first + count − 1: the same maxima and minima
    (exact, in any order) from `horizon` shifted slices instead of a gathered `[count, horizon]` copy."""
    start = first - horizon + 1
    highs = high[start : start + count].copy()
    lows = low[start : start + count].copy()
    for shift in range(1, horizon):
        np.maximum(highs, high[start + shift : start + shift + count], out=highs)
        np.minimum(lows, low[start + shift : start + shift + count], out=lows)
    return np.log(np.divide(highs, lows, out=highs), out=highs)


def require_volatility(sigma: np.ndarray) -> None:
    """Raise unless some window's trailing volatility `[n]` (raw, before the floor) is above 0."""
    if sigma.size and not (sigma > 0).any():
        raise DataError(
            f"trailing volatility {SIGMA_FEATURE} is 0 in every window: the series does not move (constant "
            "prices), so there is no return to forecast"
        )


def head_targets(
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    raw: np.ndarray,
    feature_names: tuple[str, ...],
    seq_len: int,
    horizon: int,
    hold_band_sigmas: float,
) -> HeadTargets:
    """Targets of the windows of one segment: raw closes/highs/lows `[rows]`, raw features `[rows, f]`.

    The target rows (`target_rows`) are consecutive, so every gather is a slice."""
    count = n_windows(len(close), seq_len, horizon)
    last = slice(seq_len - 1, seq_len - 1 + count)
    rows = slice(last.start + horizon, last.stop + horizon)
    rv_24 = raw[last, feature_names.index(SIGMA_FEATURE)]
    require_volatility(rv_24)
    sigma = horizon_sigma(rv_24, horizon)
    last_close, target_close = close[last].copy(), close[rows].copy()
    log_return = log_returns(last_close, target_close)
    label = band_labels(log_return / sigma, hold_band_sigmas)
    range_ref = np.maximum(
        raw[last, feature_names.index(RANGE_FEATURE)].astype(np.float64) * np.sqrt(horizon), RANGE_FLOOR
    )
    return HeadTargets(
        last_close=last_close,
        close=target_close,
        log_return=log_return,
        sigma=sigma,
        range=_consecutive_horizon_range(high, low, rows.start, count, horizon),
        range_ref=range_ref,
        label=label,
    )


TARGET_CLIP = 8.0  # z and the log range ratio are clipped here for training (a return after a frozen-price
# stretch divided by a near-zero σ would otherwise dominate every gradient); the graph clips ẑ at ±1 anyway


def label_frequencies(y: np.ndarray) -> np.ndarray:
    """Sell / Hold / Buy frequencies `[3]` of a segment's targets: int labels `[n]`, or the forecast task's
    `[n, 3]` (z, v, label) rows — the climatology the direction head is judged against and shrunk to."""
    labels = y[:, 2] if y.ndim == 2 else y
    counts = np.bincount(labels.astype(np.int64), minlength=len(CLASS_NAMES)).astype(np.float64)
    return counts / counts.sum()


def forecast_targets(targets: HeadTargets) -> np.ndarray:
    """The network's training targets `[n, 3]` float32: z, range ratio (both clipped to ±TARGET_CLIP),
    label (as a float; from the unclipped z)."""
    out = np.empty((targets.label.size, 3), dtype=np.float32)
    out[:, 0] = np.clip(targets.z, -TARGET_CLIP, TARGET_CLIP)
    out[:, 1] = np.clip(targets.range_ratio, -TARGET_CLIP, TARGET_CLIP)
    out[:, 2] = targets.label  # 0, 1, 2: exact in float32
    return out
