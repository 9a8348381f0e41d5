"""Out-of-sample scores of point and class forecasts, and skill against a reference forecast.

Regression (prices): MAE, RMSE, MAPE (%), directional accuracy. Classification (sell/hold/buy
probabilities `[n, 3]`): accuracy, macro-F1, log loss, Brier score. A forecast's skill is
1 − loss_model / loss_reference (MAE against persistence, Brier against the train class frequencies): > 0 beats
the reference, 0 ties it — the reference has skill exactly 0 against itself.
"""

from __future__ import annotations

import numpy as np

from cse_models.errors import DataError
from cse_models.features.windows import CLASS_NAMES
from cse_models.scoring.price_space import classification_metrics, regression_metrics


def directional_accuracy(pred: np.ndarray, actual: np.ndarray, last: np.ndarray) -> float:
    """Share of points where the forecast move (pred − last close) has the sign of the real move.

    A forecast of no move (persistence) is right only where the price did not move either."""
    return float(np.mean(np.sign(pred - last) == np.sign(actual - last)))


def regression_scores(pred: np.ndarray, actual: np.ndarray, last: np.ndarray) -> dict[str, float]:
    """Price forecasts `[n]` against actual closes `[n]`; `last` is each window's last close."""
    scores = regression_metrics(pred, actual)
    return {
        "mae": scores["mae"],
        "rmse": scores["rmse"],
        "mape": scores["mape"],
        "directional_accuracy": directional_accuracy(pred, actual, last),
    }


def brier_losses(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-point multi-class Brier loss Σ_k (p_k − 1[y = k])² `[n]` (0 perfect, 2 confidently wrong)."""
    onehot = np.eye(probabilities.shape[1])[labels]
    return np.sum((probabilities - onehot) ** 2, axis=1)


def classification_scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Class probabilities `[n, 3]` against int labels `[n]` (CLASS_NAMES order). Log loss clips the true
    class's probability at 1e-12, so a one-hot baseline that is wrong costs −log(1e-12) ≈ 27.6, not inf."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    scores = classification_metrics(probabilities, labels, CLASS_NAMES)
    return {
        "accuracy": scores["accuracy"],
        "f1_macro": scores["f1_macro"],
        "log_loss": scores["log_loss"],
        "brier": float(brier_losses(probabilities, labels).mean()),
    }


def skill(model_loss: float, reference_loss: float, *, what: str = "MAE") -> float:
    """1 − model / reference. A reference loss of 0 (e.g. constant prices) leaves skill undefined."""
    if not reference_loss > 0:
        raise DataError(
            f"skill is undefined: the reference forecast's {what} is {reference_loss} "
            "(constant prices? persistence is already perfect on this series)"
        )
    return 1.0 - model_loss / reference_loss
