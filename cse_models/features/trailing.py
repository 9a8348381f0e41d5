"""Trailing-window statistics over a column, vectorized with cumulative sums (no per-row Python).

Every statistic at row t reads rows t − n + 1 … t only (never a later row), and is NaN for t < n − 1:
the first rows a feature set declares as its warm-up.
"""

from __future__ import annotations

import numpy as np


def _cumulative(values: np.ndarray) -> np.ndarray:
    """[0, v0, v0 + v1, …]: the window sum over rows t − n + 1 … t is csum[t + 1] − csum[t + 1 − n]."""
    csum = np.empty(values.size + 1)
    csum[0] = 0.0
    np.cumsum(values, out=csum[1:])
    return csum


def _window_sums(csum: np.ndarray, n: int) -> np.ndarray:
    return csum[n:] - csum[:-n]


def trailing_mean(values: np.ndarray, n: int) -> np.ndarray:
    """Mean of the last `n` values at each row; NaN where the window is short or holds a NaN (a NaN does
    not poison the rows after its window, as a plain cumulative sum would).

    NaNs only at the start (a lagged column's first rows) take a short path of a few array operations:
    serving computes features per request, and the result is bit for bit the general path's (leading
    zeros add nothing to a cumulative sum)."""
    return trailing_means(values, (n,))[0]


def trailing_means(values: np.ndarray, windows: tuple[int, ...]) -> list[np.ndarray]:
    """`trailing_mean(values, n)` for each n of `windows`, from one cumulative sum (the same numbers)."""
    values = np.asarray(values, dtype=np.float64)
    outs = [np.full(values.shape, np.nan) for _ in windows]
    if values.size < min(windows):
        return outs
    missing = np.isnan(values)
    lead = int(missing.argmin()) if missing[0] else 0
    if not missing[lead:].any():
        csum = _cumulative(values[lead:])
        for out, n in zip(outs, windows, strict=True):
            if values.size - lead >= n:
                window = out[n - 1 + lead :]
                np.divide(np.subtract(csum[n:], csum[:-n], out=window), n, out=window)
        return outs
    csum = _cumulative(np.where(missing, 0.0, values))
    counts = _cumulative(missing.astype(np.float64))
    for out, n in zip(outs, windows, strict=True):
        if values.size >= n:
            out[n - 1 :] = np.where(_window_sums(counts, n) > 0, np.nan, _window_sums(csum, n) / n)
    return outs


def trailing_std(values: np.ndarray, n: int) -> np.ndarray:
    """Population standard deviation of the last `n` values (NaN before `n` values exist).

    Centred first so the E[x²] − E[x]² difference does not lose digits — on the first finite value, not
    the column mean: a mean over every row would make row t depend (in its last bits) on later rows."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    centred = values - values[finite.argmax()] if finite.any() else values
    mean = trailing_mean(centred, n)
    variance = np.subtract(trailing_mean(np.square(centred), n), np.square(mean, out=mean), out=mean)
    return np.sqrt(np.maximum(variance, 0.0, out=variance), out=variance)


def lagged(values: np.ndarray, lag: int) -> np.ndarray:
    """values[t − lag] at row t (NaN for the first `lag` rows)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    if lag < values.size:
        out[lag:] = values[: values.size - lag]
    return out
