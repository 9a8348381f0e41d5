"""The canonical kline table (DESIGN.md §2) and the intervals cse understands.

One row per closed candle, sorted by `open_time`, unique. Every source returns exactly this schema,
so cleaning, features and the assets never care where the candles came from.
"""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import polars as pl

from cse_models.errors import ConfigError, DataError

KLINE_SCHEMA: dict[str, pl.DataType] = {
    "open_time": pl.Datetime("ms", "UTC"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "close_time": pl.Datetime("ms", "UTC"),
    "quote_volume": pl.Float64(),
    "trades": pl.Int64(),
    "taker_buy_base": pl.Float64(),
    "taker_buy_quote": pl.Float64(),
}
PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_NUMERIC = ("open", "high", "low", "close", "volume")

_INTERVAL_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Binance's interval names; "1M" (month) has no fixed length and is not supported for gap detection.
BINANCE_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{5,20}$")


def interval_to_timedelta(interval: str) -> timedelta:
    """'1h' → 1 hour. Raises ConfigError naming the allowed intervals."""
    if interval not in BINANCE_INTERVALS:
        raise ConfigError(f"interval {interval!r} is not supported; use one of {', '.join(BINANCE_INTERVALS)}")
    return timedelta(seconds=int(interval[:-1]) * _INTERVAL_UNITS[interval[-1]])


def interval_ms(interval: str) -> int:
    return int(interval_to_timedelta(interval).total_seconds() * 1000)


# Where each interval's candles open: multiples of the interval since the epoch, except weekly candles,
# which open on Mondays (the epoch was a Thursday). 3-day candles are left out: their phase is not documented.
_GRID_PHASE_MS = {name: 0 for name in BINANCE_INTERVALS if name not in ("3d", "1w")} | {"1w": 4 * 86_400_000}


def off_grid(open_times: np.ndarray, interval: str) -> np.ndarray:
    """Boolean mask of open times (unix ms) that are not candle starts of `interval` (all False when the
    interval's grid is not known)."""
    phase = _GRID_PHASE_MS.get(interval)
    if phase is None:
        return np.zeros(open_times.shape, dtype=bool)
    return (open_times - phase) % interval_ms(interval) != 0


def validate_symbol(symbol: str) -> str:
    """Binance spot symbols are upper-case alphanumerics such as BTCUSDT."""
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise ConfigError(f"symbol {symbol!r} is not a Binance symbol (upper-case letters/digits, e.g. BTCUSDT)")
    return symbol


def empty_klines() -> pl.DataFrame:
    return pl.DataFrame(schema=KLINE_SCHEMA)


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Cast to the canonical schema, adding the optional columns as nulls; fail on missing required ones."""
    missing = [c for c in ("open_time", *REQUIRED_NUMERIC) if c not in df.columns]
    if missing:
        raise DataError(f"kline table is missing column(s) {missing}; it has {df.columns}")
    cols = []
    for name, dtype in KLINE_SCHEMA.items():
        if name in df.columns:
            cols.append(pl.col(name).cast(dtype, strict=True))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    return df.select(cols)


def check_finite_prices(df: pl.DataFrame, *, origin: str = "klines") -> None:
    """Raise DataError naming the first row and column holding NaN/inf/null in a required column."""
    for col in REQUIRED_NUMERIC:
        values = df.get_column(col).to_numpy()
        bad = np.flatnonzero(~np.isfinite(values.astype(np.float64, copy=False)))
        if bad.size:
            row = int(bad[0])
            raise DataError(
                f"{origin}: column {col!r} has {bad.size} non-finite value(s), first at row {row} ({values[row]!r})"
            )
