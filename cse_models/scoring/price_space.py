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


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> dict:
    """Accuracy, macro and per-class precision / recall / F1, log loss and the confusion matrix
    (rows = true class, columns = predicted), from class probabilities `[n, k]` and int labels `[n]`."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    k = len(class_names)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(true_positive / confusion.sum(axis=0))
        recall = np.nan_to_num(true_positive / confusion.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    return {
        "accuracy": float(true_positive.sum() / max(len(labels), 1)),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "log_loss": float(-np.mean(np.log(picked))),
        **{f"f1_{name}": float(f1[i]) for i, name in enumerate(class_names)},
        "confusion_matrix": confusion.tolist(),
    }
