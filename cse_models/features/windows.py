"""Zero-copy sliding windows and their targets.

A window of `seq_len` rows ending at row t predicts the row t + horizon. Windows are strided views
(`sliding_window_view`) of the scaled feature matrix: `[n_windows, seq_len, n_features]` without a copy.
"""

from __future__ import annotations

import numpy as np

from cse_models.errors import ConfigError, DataError

CLASS_NAMES = ("sell", "hold", "buy")


def n_windows(n_rows: int, seq_len: int, horizon: int) -> int:
    return max(n_rows - seq_len - horizon + 1, 0)


def sliding_windows(features: np.ndarray, seq_len: int, horizon: int) -> np.ndarray:
    """[rows, f] → view [n_windows, seq_len, f]; window i covers rows i … i+seq_len−1."""
    count = n_windows(features.shape[0], seq_len, horizon)
    if count == 0:
        raise DataError(f"{features.shape[0]} rows give no window of {seq_len} rows + {horizon} ahead")
    row, column = features.strides  # window i starts one row after window i − 1; read-only, as sliding_window_view
    return np.lib.stride_tricks.as_strided(
        features, shape=(count, seq_len, features.shape[1]), strides=(row, row, column), writeable=False
    )


def target_rows(n_rows: int, seq_len: int, horizon: int) -> np.ndarray:
    """Row index of each window's target: i + seq_len − 1 + horizon."""
    return np.arange(n_windows(n_rows, seq_len, horizon)) + seq_len - 1 + horizon


def regression_targets(scaled_target: np.ndarray, seq_len: int, horizon: int) -> np.ndarray:
    """The scaled target column (the close) `horizon` rows after each window."""
    return scaled_target[target_rows(len(scaled_target), seq_len, horizon)]


def classification_targets(close: np.ndarray, seq_len: int, horizon: int, band: float) -> np.ndarray:
    """Sell (0) / Hold (1) / Buy (2) from the return close[t+h]/close[t] − 1 against ±band,
    t being the last row of the window. int32 labels indexing CLASS_NAMES."""
    if band < 0:
        raise ConfigError(f"hold band must be ≥ 0, got {band}")
    rows = target_rows(len(close), seq_len, horizon)
    ret = close[rows] / close[rows - horizon] - 1.0
    return np.where(ret > band, 2, np.where(ret < -band, 0, 1)).astype(np.int32)
