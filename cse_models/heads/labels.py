"""Sell / Hold / Buy: how the move after a window becomes its direction label. The one rule that training
labels with (`heads.targets`) and that serving scores its live predictions with (`cse_serving.scorecard`),
so a served direction is judged by the label it was trained to predict.

The move is measured against a Hold band of half-width b:
  in σ units (the forecast task):  z = log(close / last_close) / σ,  σ = max(rv_24[t]·√h, SIGMA_FLOOR)
  on the simple return (the seeds' classification task):  close / last_close − 1
Buy when the move is above +b, Sell when below −b, Hold on the band's edges and inside. A band in σ widens
with volatility, so Hold keeps about the same share of rows in calm and wild regimes.

numpy only: serving imports it without jax.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cse_models.heads.scales import SIGMA_FLOOR

SELL, HOLD, BUY = 0, 1, 2
"""Label values: indices into `features.windows.CLASS_NAMES`."""


def band_labels(move: np.ndarray, band: float) -> np.ndarray:
    """int32 labels `[n]` of moves `[n]` against ±`band`: Buy above, Sell below, Hold on the edges and inside."""
    return np.where(move > band, BUY, np.where(move < -band, SELL, HOLD)).astype(np.int32)


def log_returns(last_close: np.ndarray, close: np.ndarray) -> np.ndarray:
    """log(close / last_close) `[n]` of closes `[n]`: the return the forecast task's labels and heads measure."""
    return np.log(close / last_close)


def horizon_sigma(rv_24: np.ndarray, horizon: int) -> np.ndarray:
    """σ of a `horizon`-step return `[n]` float64: the one-step trailing volatility `[n]` times √h (a random
    walk's spread grows with the square root of time), floored at SIGMA_FLOOR (a frozen price has rv 0)."""
    return np.maximum(np.asarray(rv_24, dtype=np.float64) * np.sqrt(horizon), SIGMA_FLOOR)


@dataclass(frozen=True)
class HoldBand:
    """The Hold band of one window: half-width `band`, in units of `sigma` when given (the forecast task:
    the move is the log return over σ), else on the simple return (the classification task).

    Fixed when a prediction is served (σ comes from the request's own klines), so serving records it then and
    labels the realized close when its candle closes."""

    band: float
    sigma: float | None = None

    @classmethod
    def in_sigmas(cls, hold_band_sigmas: float, rv_24: float, horizon: int = 1) -> HoldBand:
        """The forecast task's band: `rv_24` is the raw trailing volatility feature of the window's last row."""
        return cls(hold_band_sigmas, float(horizon_sigma(np.float64(rv_24), horizon)))

    @classmethod
    def simple_return(cls, band: float) -> HoldBand:
        """The classification task's fixed band on the simple return."""
        return cls(band)

    def moves(self, last_close: np.ndarray, close: np.ndarray) -> np.ndarray:
        """What the band is measured against `[n]` float64, from the closes `[n]` before and after."""
        last_close, close = np.asarray(last_close, np.float64), np.asarray(close, np.float64)
        return close / last_close - 1.0 if self.sigma is None else log_returns(last_close, close) / self.sigma

    def labels(self, last_close: np.ndarray, close: np.ndarray) -> np.ndarray:
        """Sell 0 / Hold 1 / Buy 2 `[n]` int32 of the moves from `last_close` to `close` `[n]`."""
        return band_labels(self.moves(last_close, close), self.band)

    def label(self, last_close: float, close: float) -> int:
        """The label of one move (the same arithmetic as `labels`, on a one-element array)."""
        return int(self.labels(np.array([last_close]), np.array([close]))[0])
