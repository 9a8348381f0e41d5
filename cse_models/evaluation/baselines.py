"""Naive forecasts, computed like any model: one function per baseline, registered by name.

Every forecaster — baseline or trained network — maps a `FoldData` to forecasts for each window of the
fold's test segment: prices `[n]` for regression, class probabilities `[n, 3]` (sell/hold/buy) for
classification. A window covers rows i … i+seq_len−1 and targets row i+seq_len−1+horizon; a baseline reads
only the window's own closes (and, for the class baselines, the fold's train labels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cse_models.config import Task
from cse_models.evaluation.folds import FoldData
from cse_models.features.windows import CLASS_NAMES
from cse_models.registry import Registry

Forecaster = Callable[[FoldData], np.ndarray]


@dataclass(frozen=True)
class Baseline:
    task: Task
    forecast: Forecaster
    description: str


BASELINES: Registry[Baseline] = Registry("baseline")
# What skill and the DM test compare with. For classes it is the train frequencies, not the one-hot majority:
# against a one-hot forecast (Brier 2 when wrong) any soft model "wins", however useless its probabilities.
REFERENCE = {"regression": "persistence", "classification": "class_frequencies"}


def baseline_names(task: Task) -> list[str]:
    """The reference first, then the other baselines of the task."""
    names = [n for n in BASELINES if BASELINES.get(n).task == task and n != REFERENCE[task]]
    return [REFERENCE[task], *names]


def register_baseline(name: str, task: Task, description: str) -> Callable[[Forecaster], Forecaster]:
    def add(fn: Forecaster) -> Forecaster:
        BASELINES.add(name, Baseline(task, fn, description))
        return fn

    return add


def close_windows(data: FoldData) -> np.ndarray:
    """The test segment's closes as windows `[n_windows, seq_len]` (a strided view)."""
    cfg = data.data_cfg
    view = np.lib.stride_tricks.sliding_window_view(data.test.close, cfg.seq_len)
    return view[: data.test_windows()]


@register_baseline("persistence", "regression", "next close = last close of the window")
def persistence(data: FoldData) -> np.ndarray:
    return close_windows(data)[:, -1].copy()


@register_baseline("drift", "regression", "last close + horizon × mean close-to-close change over the window")
def drift(data: FoldData) -> np.ndarray:
    closes = close_windows(data)
    step = (closes[:, -1] - closes[:, 0]) / (closes.shape[1] - 1)
    return closes[:, -1] + data.data_cfg.horizon * step


@register_baseline("moving_average", "regression", "mean close of the window")
def moving_average(data: FoldData) -> np.ndarray:
    return close_windows(data).mean(axis=1)


@register_baseline("majority", "classification", "the most frequent class of the fold's train labels, one-hot")
def majority(data: FoldData) -> np.ndarray:
    counts = np.bincount(data.segments["train"].y, minlength=len(CLASS_NAMES))
    return np.tile(np.eye(len(CLASS_NAMES))[counts.argmax()], (data.test_windows(), 1))


@register_baseline(
    "class_frequencies", "classification", "the fold's train class frequencies as probabilities (climatology)"
)
def class_frequencies(data: FoldData) -> np.ndarray:
    counts = np.bincount(data.segments["train"].y, minlength=len(CLASS_NAMES)).astype(np.float64)
    return np.tile(counts / counts.sum(), (data.test_windows(), 1))


@register_baseline("last_move", "classification", "the class of the window's last horizon-step return, one-hot")
def last_move(data: FoldData) -> np.ndarray:
    """Same hold band as the labels; the return spans `horizon` rows (fewer if the window is shorter)."""
    closes = close_windows(data)
    lag = min(data.data_cfg.horizon, closes.shape[1] - 1)
    ret = closes[:, -1] / closes[:, -1 - lag] - 1.0
    band = data.data_cfg.hold_band
    labels = np.where(ret > band, 2, np.where(ret < -band, 0, 1))
    return np.eye(len(CLASS_NAMES))[labels]
