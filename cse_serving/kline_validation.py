"""Kline validation: the klines of a request → open times `[n]` int64 (unix ms) and values `[n, 5]` float64
(open, high, low, close, volume) that the feature function may read, or DataError (→ 422) naming the
kline (its index in the request) and the column.

One list comprehension over the klines and one combined vectorized test on the happy path; the detailed
search runs only when that test fails.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from cse_models.data.schema import off_grid
from cse_models.errors import DataError
from cse_serving.schemas import Kline

VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)
_OPEN_TIME = operator.attrgetter("open_time")


def kline_arrays(rows: Sequence[Kline], offset: int, interval: str) -> tuple[np.ndarray, np.ndarray]:
    """Open times `[n]` and values `[n, 5]` of `rows` (the request's klines from index `offset`), checked
    by `check_klines` on the `interval`'s candle grid."""
    try:
        times = np.fromiter(map(_OPEN_TIME, rows), dtype=np.int64, count=len(rows))
    except TypeError:  # a None: klines sent with the seed's `timestamp`, or without a time
        times = _opened_ms(rows, offset)
    values = np.array([(k.open, k.high, k.low, k.close, k.volume) for k in rows], dtype=np.float64)
    check_klines(times, values, offset, interval)
    return times, values


def _opened_ms(rows: Sequence[Kline], offset: int) -> np.ndarray:
    """Open times through the `timestamp` alias; DataError naming the first kline that has no time."""
    missing = next((i for i, k in enumerate(rows) if k.opened_ms is None), None)
    if missing is not None:
        raise DataError(
            f"klines[{offset + missing}] needs `open_time` (unix ms; the seed's `timestamp` is accepted as an alias)"
        )
    return np.fromiter((k.opened_ms for k in rows), dtype=np.int64, count=len(rows))


def check_klines(times: np.ndarray, values: np.ndarray, offset: int = 0, interval: str | None = None) -> None:
    """Reject NaN/inf, prices that are not positive float32 normals, negative volume, high < low,
    non-increasing open_time and (given `interval`) open times off the interval's candle grid.

    Prices outside float32's normal range would reach the graph as 0 or inf (its inputs are float32) and
    still produce an answer, so they are refused here. One combined vectorized test on the happy path;
    the detailed search runs only when it fails, so the message can name the kline (index in the request)
    and the column."""
    prices = values[:, :4]
    off = off_grid(times, interval) if interval is not None else np.zeros(times.shape, dtype=bool)
    ok = (
        np.isfinite(values).all()
        and (prices >= _FLOAT32_TINY).all()
        and (prices <= _FLOAT32_MAX).all()
        and (values[:, 4] >= 0).all()
        and (values[:, 1] >= values[:, 2]).all()
        and (times.size < 2 or (np.diff(times) > 0).all())
        and not off.any()
    )
    if ok:
        return
    finite = np.isfinite(values)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise DataError(
            f"klines[{offset + row}].{VALUE_COLUMNS[col]} is {float(values[row, col])!r}; values must be finite"
        )
    if not (prices > 0).all():
        row, col = np.argwhere(prices <= 0)[0]
        raise DataError(
            f"klines[{offset + row}].{VALUE_COLUMNS[col]} is {float(values[row, col])!r}; prices must be > 0"
        )
    outside = (prices < _FLOAT32_TINY) | (prices > _FLOAT32_MAX)
    if outside.any():
        row, col = np.argwhere(outside)[0]
        raise DataError(
            f"klines[{offset + row}].{VALUE_COLUMNS[col]} is {float(values[row, col])!r}; prices must lie in "
            f"[{_FLOAT32_TINY:.3g}, {_FLOAT32_MAX:.3g}] (float32, the model's input type)"
        )
    if not (values[:, 4] >= 0).all():
        row = int(np.flatnonzero(values[:, 4] < 0)[0])
        raise DataError(f"klines[{offset + row}].volume is {float(values[row, 4])!r}; volume must be ≥ 0")
    if not (values[:, 1] >= values[:, 2]).all():
        row = int(np.flatnonzero(values[:, 1] < values[:, 2])[0])
        raise DataError(f"klines[{offset + row}] has high {float(values[row, 1])!r} < low {float(values[row, 2])!r}")
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(
            f"klines[{offset + row}].open_time {int(times[row])} is not the start of a {interval} candle; "
            "send the exchange's candles as they are"
        )
    row = int(np.flatnonzero(np.diff(times) <= 0)[0]) + 1
    raise DataError(
        f"klines[{offset + row}].open_time {int(times[row])} is not after the previous kline's "
        f"{int(times[row - 1])}; send klines oldest first, without duplicates"
    )
