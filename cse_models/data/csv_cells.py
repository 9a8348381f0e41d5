"""Strict cell parsing shared by every kline CSV format: unix times of any unit, numbers, required columns.

Every failure names the file, the column and the row, so a damaged download is found, not guessed around.
"""

from __future__ import annotations

import io

import numpy as np
import polars as pl

from cse_models.errors import DataError

# Epoch magnitudes: seconds < 1e11 (year 5138), ms < 1e14, µs < 1e17 — unambiguous for any date after 1973.
_UNIT_BOUNDS = ((1e11, 1_000.0), (1e14, 1.0), (1e17, 1e-3))


def epoch_to_ms(values: np.ndarray, *, origin: str) -> np.ndarray:
    """Unix timestamps in s, ms or µs (decided per value) → int64 milliseconds."""
    values = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 1e8))
    if bad.size:
        raise DataError(f"{origin}: timestamp at row {int(bad[0])} is not a unix time ({values[bad[0]]!r})")
    out = np.empty(values.shape, dtype=np.int64)
    done = np.zeros(values.shape, dtype=bool)
    for bound, factor in _UNIT_BOUNDS:
        sel = ~done & (values < bound)
        # µs → ms truncates, as Binance's own ms close times do (…59.999999 s is …59.999 s, not the next candle)
        ms = np.floor(values[sel] / 1_000.0) if factor < 1 else np.rint(values[sel] * factor)
        out[sel] = ms.astype(np.int64)
        done |= sel
    if not done.all():
        row = int(np.flatnonzero(~done)[0])
        raise DataError(f"{origin}: timestamp at row {row} is too large for s/ms/µs ({values[row]!r})")
    return out


def epoch_unit_ms(values: np.ndarray) -> np.ndarray:
    """Milliseconds per unit of each unix value, its unit decided by magnitude as `epoch_to_ms` decides it."""
    values = np.asarray(values, dtype=np.float64)
    return np.select([values < bound for bound, _ in _UNIT_BOUNDS], [factor for _, factor in _UNIT_BOUNDS], np.nan)


def read_strings(text: str, *, has_header: bool, origin: str) -> pl.DataFrame:
    """Every cell as text: the format's parser decides what each column means, strictly."""
    try:
        return pl.read_csv(io.StringIO(text), has_header=has_header, infer_schema=False, null_values=["NULL", ""])
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{origin}: not a readable CSV ({exc})") from exc


def to_float(df: pl.DataFrame, column: str, *, origin: str) -> pl.Series:
    """Strict float parsing: a non-numeric cell raises naming its row and column."""
    raw = df.get_column(column)
    parsed = raw.cast(pl.Float64, strict=False)
    bad = (parsed.is_null() & raw.is_not_null()).arg_true()
    if bad.len():
        row = int(bad[0])
        raise DataError(f"{origin}: column {column!r} row {row} is not a number ({raw[row]!r})")
    return parsed


def require(df: pl.DataFrame, columns: tuple[str, ...] | list[str], origin: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{origin}: missing column(s) {missing}; found {df.columns}")
