"""Forecast metrics in price space (numpy): what a user reads in the leaderboard and the manifest."""

from __future__ import annotations

import numpy as np


def regression_metrics(pred: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """MSE, MAE, RMSE and MAPE (%) of predicted vs actual prices."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    err = pred - actual
    mse = float(np.mean(err**2))
    return {
        "mse": mse,
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(mse)),
        "mape": float(np.mean(np.abs(err) / np.abs(actual)) * 100.0),
    }
