"""Naive forecasts, computed like any model: one function per baseline, registered by name and head.

Every forecaster — baseline or trained network — maps a `FoldData` to forecasts for each window of the
fold's test segment, per head (`Forecasts`: head → array):
  price       next close `[n]`
  interval    lower and upper close `[n, 2]`
  volatility  next-horizon log(high/low) `[n]`
  direction   Sell / Hold / Buy probabilities `[n, 3]`
A window covers rows i … i+seq_len−1 and targets row i+seq_len−1+horizon; a baseline reads only the
window's own rows and, where it fits a few coefficients (ridge, HAR), the fold's train segment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from cse_models.datasets.segments import SplitArrays
from cse_models.features.sets import RANGE_FLOOR
from cse_models.features.windows import CLASS_NAMES, target_rows
from cse_models.heads.layout import RANGE_FEATURE, SIGMA_FEATURE, heads_of_task
from cse_models.heads.registry import HeadView
from cse_models.heads.targets import horizon_range, label_frequencies
from cse_models.heads.tasks import task_spec
from cse_models.registry import Registry
from cse_models.scoring.folds import FoldData

Forecasts = Mapping[str, np.ndarray]
Forecaster = Callable[[FoldData], Forecasts]
HeadForecast = Callable[[FoldData], np.ndarray]


@dataclass(frozen=True)
class Baseline:
    head: str
    forecast: HeadForecast
    description: str
    tasks: tuple[str, ...] = ("regression", "classification", "forecast")  # tasks whose data it can read

    def forecaster(self) -> Forecaster:
        """Forecasts of its head, and of every head of the data's task that takes this baseline as its
        reference: a head forecasting another head's quantity is judged against that head's reference
        without a copy of it."""

        def forecast(data: FoldData) -> Forecasts:
            values = self.forecast(data)
            heads = [
                h for h in heads_of_task(data.data_cfg.task) if h != self.head and BASELINES.get(REFERENCE[h]) is self
            ]
            return {self.head: values, **dict.fromkeys(heads, values)}

        return forecast


BASELINES: Registry[Baseline] = Registry("baseline")
# What skill and the DM test compare each head with (`HeadSpec.reference`). For classes it is the train
# frequencies, not the one-hot majority: against a one-hot forecast (Brier 2 when wrong) any soft model
# "wins", however useless.


REFERENCE: Mapping[str, str] = HeadView(lambda spec: spec.reference)


def baseline_names(task: str, head: str | None = None) -> list[str]:
    """The baselines of the task's heads (or one head), each head's reference first."""
    names = []
    for h in heads_of_task(task) if head is None else (head,):
        others = [
            n for n in BASELINES if BASELINES.get(n).head == h and n != REFERENCE[h] and task in BASELINES.get(n).tasks
        ]
        names += [n for n in (REFERENCE[h], *others) if n not in names]  # a shared reference once
    return names


def register_baseline(name: str, head: str, description: str, tasks: tuple[str, ...] | None = None):
    def add(fn: HeadForecast) -> HeadForecast:
        BASELINES.add(name, Baseline(head, fn, description, *(() if tasks is None else (tasks,))))
        return fn

    return add


def close_windows(split: SplitArrays, data: FoldData) -> np.ndarray:
    """A segment's closes as windows `[n_windows, seq_len]` (a strided view)."""
    cfg = data.data_cfg
    count = target_rows(split.close.shape[0], cfg.seq_len, cfg.horizon).size
    return np.lib.stride_tricks.sliding_window_view(split.close, cfg.seq_len)[:count]


def window_returns(split: SplitArrays, data: FoldData) -> np.ndarray:
    """One-step log returns inside each window `[n, seq_len − 1]`."""
    return np.diff(np.log(close_windows(split, data)), axis=1)


def future_returns(split: SplitArrays, data: FoldData) -> np.ndarray:
    """log(close[t+h] / close[t]) of each window `[n]` (train segments only: the ridge's targets)."""
    cfg = data.data_cfg
    rows = target_rows(split.close.shape[0], cfg.seq_len, cfg.horizon)
    return np.log(split.close[rows] / split.close[rows - cfg.horizon])


def last_row(split: SplitArrays, data: FoldData, feature: str) -> np.ndarray:
    """A raw feature at each window's last row `[n]`."""
    cfg = data.data_cfg
    rows = target_rows(split.close.shape[0], cfg.seq_len, cfg.horizon) - cfg.horizon
    return split.raw[rows, data.scaler.feature_names.index(feature)].astype(np.float64)


# --- price ------------------------------------------------------------------------------------------------


@register_baseline("persistence", "price", "next close = last close of the window")
def persistence(data: FoldData) -> np.ndarray:
    return close_windows(data.test, data)[:, -1].copy()


@register_baseline("drift", "price", "last close + horizon × mean close-to-close change over the window")
def drift(data: FoldData) -> np.ndarray:
    closes = close_windows(data.test, data)
    step = (closes[:, -1] - closes[:, 0]) / (closes.shape[1] - 1)
    return closes[:, -1] + data.data_cfg.horizon * step


@register_baseline("moving_average", "price", "mean close of the window")
def moving_average(data: FoldData) -> np.ndarray:
    return close_windows(data.test, data).mean(axis=1)


RIDGE_PENALTY = 10.0  # per window: strong, since hourly returns are nearly unpredictable
RIDGE_SHRINK = 0.5  # the prediction is halved: unshrunk, the ridge loses to persistence on some series


@register_baseline(
    "ridge_returns", "price", "ridge on the window's past log returns, fit on the fold's train rows, shrunk ×0.5"
)
def ridge_returns(data: FoldData) -> np.ndarray:
    """The gatekeeper (Qlib's Linear row): a network that cannot beat a shrunk linear model on returns has
    not learned anything a line could not."""
    train = data.segments["train"]
    x, y = window_returns(train, data), future_returns(train, data)
    mean = x.mean(axis=0)
    gram = (x - mean).T @ (x - mean) + RIDGE_PENALTY * x.shape[0] * np.mean(x.var(axis=0)) * np.eye(x.shape[1])
    coef = np.linalg.solve(gram, (x - mean).T @ (y - y.mean()))
    predicted = y.mean() + (window_returns(data.test, data) - mean) @ coef
    return close_windows(data.test, data)[:, -1] * np.exp(RIDGE_SHRINK * predicted)


# --- interval -----------------------------------------------------------------------------------------------


def _central_quantiles(level: float) -> tuple[float, float]:
    return (1 - level) / 2, (1 + level) / 2


@register_baseline(
    "trailing_quantiles", "interval", "empirical quantiles of the window's one-step returns, scaled by √horizon"
)
def trailing_quantiles(data: FoldData) -> np.ndarray:
    returns = window_returns(data.test, data) * np.sqrt(data.data_cfg.horizon)
    lo, hi = np.quantile(returns, _central_quantiles(data.data_cfg.interval_level), axis=1)
    last = close_windows(data.test, data)[:, -1]
    return np.stack([last * np.exp(lo), last * np.exp(hi)], axis=1)


# --- volatility ---------------------------------------------------------------------------------------------


@register_baseline(
    "trailing_mean", "volatility", "mean log(high/low) of the last 24 candles, × √horizon", tasks=("forecast",)
)
def trailing_mean(data: FoldData) -> np.ndarray:
    return np.maximum(last_row(data.test, data, RANGE_FEATURE) * np.sqrt(data.data_cfg.horizon), RANGE_FLOOR)


HAR_FEATURES = ("log_range", "range_mean_24", "range_mean_168")


def _har_design(split: SplitArrays, data: FoldData, floor: float) -> np.ndarray:
    """[1, log of the 1 h / 24 h / 168 h ranges, hour sin/cos] per window (Corsi 2009, on ranges)."""
    logs = [np.log(np.maximum(last_row(split, data, f), floor)) for f in HAR_FEATURES]
    hours = [last_row(split, data, f) for f in ("hour_sin", "hour_cos")]
    return np.stack([np.ones_like(logs[0]), *logs, *hours], axis=1)


@register_baseline(
    "har",
    "volatility",
    "HAR: least squares of log next range on log 1 h / 24 h / 168 h ranges and hour of day (train rows)",
    tasks=("forecast",),
)
def har(data: FoldData) -> np.ndarray:
    """The strong classical volatility model the networks must beat. Fit in logs, so the exponentiated
    forecast is a median — what the MAE rewards. Ranges are floored at the train segment's 1st percentile:
    a frozen-price candle (high == low) would otherwise put log 0 = −∞ into the least squares."""
    train, cfg = data.segments["train"], data.data_cfg
    rows = target_rows(train.close.shape[0], cfg.seq_len, cfg.horizon)
    ranges = horizon_range(train.high, train.low, rows, cfg.horizon)
    floor = max(float(np.quantile(ranges, 0.01)), RANGE_FLOOR)
    coef, *_ = np.linalg.lstsq(_har_design(train, data, floor), np.log(np.maximum(ranges, floor)), rcond=None)
    return np.exp(_har_design(data.test, data, floor) @ coef)


# --- direction ----------------------------------------------------------------------------------------------


@register_baseline("majority", "direction", "the most frequent class of the fold's train labels, one-hot")
def majority(data: FoldData) -> np.ndarray:
    return np.tile(
        np.eye(len(CLASS_NAMES))[label_frequencies(data.segments["train"].y).argmax()], (data.test_windows(), 1)
    )


@register_baseline(
    "class_frequencies", "direction", "the fold's train class frequencies as probabilities (climatology)"
)
def class_frequencies(data: FoldData) -> np.ndarray:
    return np.tile(label_frequencies(data.segments["train"].y), (data.test_windows(), 1))


@register_baseline("last_move", "direction", "the class of the window's last horizon-step return, one-hot")
def last_move(data: FoldData) -> np.ndarray:
    """Same hold band as the labels (fixed, or in trailing σ for the forecast task); the return spans
    `horizon` rows (fewer if the window is shorter)."""
    cfg = data.data_cfg
    closes = close_windows(data.test, data)
    lag = min(cfg.horizon, closes.shape[1] - 1)
    ret = np.log(closes[:, -1] / closes[:, -1 - lag])
    ret, band = LAST_MOVE_BANDS[task_spec(cfg.task).hold_band](ret, data, lag)
    labels = np.where(ret > band, 2, np.where(ret < -band, 0, 1))
    return np.eye(len(CLASS_NAMES))[labels]


def _band_in_sigmas(log_return: np.ndarray, data: FoldData, lag: int) -> tuple[np.ndarray, np.ndarray | float]:
    """The log return against ± `hold_band_sigmas` trailing σ·√lag (the forecast task's labels)."""
    return log_return, data.data_cfg.hold_band_sigmas * last_row(data.test, data, SIGMA_FEATURE) * np.sqrt(lag)


def _fixed_band(log_return: np.ndarray, data: FoldData, _: int) -> tuple[np.ndarray, np.ndarray | float]:
    """The simple return against ± `hold_band` (the seeds' labels)."""
    return np.expm1(log_return), data.data_cfg.hold_band


# `TaskSpec.hold_band` → the window's last move and the band it is classed against
LAST_MOVE_BANDS: dict[str, Callable[[np.ndarray, FoldData, int], tuple[np.ndarray, np.ndarray | float]]] = {
    "sigmas": _band_in_sigmas,
    "fixed": _fixed_band,
}
