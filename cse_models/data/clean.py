"""Cleaning raw klines into the canonical table, with a report of everything it found and did.

Nothing is dropped silently: every removed or changed row is counted in `CleaningReport`, which the
`klines` asset puts in Dagster metadata. Policies are explicit options (`CleaningConfig`). Gaps are never an
error: those of a market's calendar (weekends, nights; `gaps.py`) are counted apart from unexpected ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from cse_models.data.gaps import GapStats, gap_stats
from cse_models.data.schema import PRICE_COLUMNS, check_finite_prices, conform, interval_ms
from cse_models.errors import ConfigError, DataError

_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class CleaningConfig:
    """How to treat what cleaning finds.

    bad_ticks: "drop" removes flagged candles (counted), "keep" only flags them.
    gaps: "keep" leaves missing candles missing (counted), "ffill" inserts flat candles at the last close
        with zero volume (counted as filled).
    spike_sigmas: a close-to-close log return beyond this many robust standard deviations (MAD·1.4826
        of all returns) is a jump. A bad tick is a jump that reverts on the next candle, or a candle
        whose high/low range alone spans four such jumps. The default (30σ ≈ 14 % for BTC hourly)
        keeps real crashes such as 2020-03-12/13 and catches prints that are off by multiples.
    open_gap_tolerance: on Binance a candle opens at the previous close; a consecutive candle whose open
        is further away than this fraction is a bad print. A series with calendar gaps (a market that
        closes, such as stocks, whose daily bars open away from the last close) skips this check.
    """

    bad_ticks: Literal["drop", "keep"] = "drop"
    gaps: Literal["keep", "ffill"] = "keep"
    spike_sigmas: float = 30.0
    open_gap_tolerance: float = 0.05

    def __post_init__(self) -> None:
        if self.bad_ticks not in ("drop", "keep"):
            raise ConfigError(f"bad_ticks must be 'drop' or 'keep', got {self.bad_ticks!r}")
        if self.gaps not in ("keep", "ffill"):
            raise ConfigError(f"gaps must be 'keep' or 'ffill', got {self.gaps!r}")
        if not self.spike_sigmas > 0:
            raise ConfigError(f"spike_sigmas must be > 0, got {self.spike_sigmas}")
        if not self.open_gap_tolerance > 0:
            raise ConfigError(f"open_gap_tolerance must be > 0, got {self.open_gap_tolerance}")


@dataclass(frozen=True)
class CleaningReport:
    rows_in: int
    rows_out: int
    duplicates_removed: int
    duplicates_conflicting: int
    gaps: int
    missing_candles: int
    longest_gap_candles: int
    calendar_gaps: int
    calendar_missing_candles: int
    unexpected_gaps: int
    unexpected_missing_candles: int
    candles_filled: int
    bad_ticks: int
    bad_tick_reasons: dict[str, int] = field(default_factory=dict)
    bad_tick_times: list[str] = field(default_factory=list)
    bad_ticks_dropped: bool = True
    first_open_time: str | None = None
    last_open_time: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def clean_klines(
    raw: pl.DataFrame, interval: str, config: CleaningConfig = CleaningConfig()
) -> tuple[pl.DataFrame, CleaningReport]:
    """Raw klines (any order, duplicates, gaps, bad ticks) → sorted unique klines + what was done."""
    if raw.height == 0:
        raise DataError("no klines to clean: the source returned an empty table")
    step = interval_ms(interval)
    df = conform(raw)
    check_finite_prices(df, origin="raw klines")
    deduped, removed, conflicting = _drop_duplicates(df)
    continuous = _gap_stats(deduped, step).calendar_gaps == 0
    flags = _bad_tick_flags(deduped, step, config, continuous=continuous)
    bad_rows = np.zeros(deduped.height, dtype=bool)
    for mask in flags.values():
        bad_rows |= mask
    times = deduped.get_column("open_time")
    bad_times = [str(t) for t in times.filter(pl.Series(bad_rows)).to_list()]
    kept = deduped.filter(~pl.Series(bad_rows)) if config.bad_ticks == "drop" else deduped
    if kept.height == 0:
        raise DataError("cleaning removed every kline: all rows were flagged as bad ticks")
    gaps = _gap_stats(kept, step)
    filled = kept
    if config.gaps == "ffill" and gaps.missing_candles:
        filled = _forward_fill(kept, interval)
    report = CleaningReport(
        rows_in=raw.height,
        rows_out=filled.height,
        duplicates_removed=removed,
        duplicates_conflicting=conflicting,
        gaps=gaps.gaps,
        missing_candles=gaps.missing_candles,
        longest_gap_candles=gaps.longest_gap_candles,
        calendar_gaps=gaps.calendar_gaps,
        calendar_missing_candles=gaps.calendar_missing_candles,
        unexpected_gaps=gaps.unexpected_gaps,
        unexpected_missing_candles=gaps.unexpected_missing_candles,
        candles_filled=filled.height - kept.height,
        bad_ticks=int(bad_rows.sum()),
        bad_tick_reasons={name: int(mask.sum()) for name, mask in flags.items()},
        bad_tick_times=bad_times[:50],
        bad_ticks_dropped=config.bad_ticks == "drop",
        first_open_time=str(filled.get_column("open_time")[0]),
        last_open_time=str(filled.get_column("open_time")[-1]),
    )
    return _with_close_time(filled, step), report


def _drop_duplicates(df: pl.DataFrame) -> tuple[pl.DataFrame, int, int]:
    """One row per open_time: the most complete row wins (CryptoDataDownload repeats rows without
    a trade count), ties go to the first one delivered. Conflicting = duplicates whose prices differ."""
    ranked = df.with_row_index("_order").with_columns(
        pl.sum_horizontal(pl.all().exclude("_order").is_not_null()).alias("_filled")
    )
    conflicting = (
        ranked.group_by("open_time")
        .agg([pl.col(c).n_unique().alias(c) for c in PRICE_COLUMNS])
        .filter(pl.any_horizontal(pl.col(c) > 1 for c in PRICE_COLUMNS))
        .height
    )
    unique = (
        ranked.sort(["open_time", "_filled", "_order"], descending=[False, True, False])
        .unique(subset="open_time", keep="first", maintain_order=True)
        .drop("_order", "_filled")
    )
    return unique, df.height - unique.height, conflicting


def _bad_tick_flags(df: pl.DataFrame, step: int, config: CleaningConfig, *, continuous: bool) -> dict[str, np.ndarray]:
    """Boolean masks per reason, on time-sorted unique rows; `continuous`: the market never closes."""
    o, h, lo, c = (df.get_column(col).to_numpy() for col in PRICE_COLUMNS)
    flags = {
        "non_positive_price": (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0),
        "negative_volume": df.get_column("volume").to_numpy() < 0,
        "inconsistent_ohlc": (h < np.maximum(o, c)) | (lo > np.minimum(o, c)),
    }
    positive = ~flags["non_positive_price"]
    log_o, log_h, log_l, log_c = (np.log(np.where(positive, x, 1.0)) for x in (o, h, lo, c))
    ret = np.diff(log_c)
    consecutive = np.diff(df.get_column("open_time").dt.epoch("ms").to_numpy()) == step
    open_gap = np.abs(log_o[1:] - log_c[:-1]) > np.log1p(config.open_gap_tolerance)
    flags["open_jump"] = np.concatenate([[False], consecutive & open_gap & continuous])
    if ret.size < 3:
        return flags
    sigma = _MAD_TO_SIGMA * np.median(np.abs(ret - np.median(ret))) or float(np.std(ret)) or 1.0
    limit = config.spike_sigmas * sigma
    jump_in = np.concatenate([[0.0], ret])
    jump_out = np.concatenate([ret, [0.0]])
    flags["reverting_spike"] = (
        (np.abs(jump_in) > limit) & (np.abs(jump_out) > limit) & (np.sign(jump_in) != np.sign(jump_out))
    )
    flags["range_spike"] = (log_h - log_l) > 4 * limit
    return flags


def _gap_stats(df: pl.DataFrame, step: int) -> GapStats:
    """Gaps are counted, never refused; a candle off the interval grid is (a wrong interval or a damaged file)."""
    open_ms = df.get_column("open_time").dt.epoch("ms").to_numpy()
    misaligned = np.flatnonzero(np.diff(open_ms) % step)
    if misaligned.size:
        row = int(misaligned[0]) + 1
        raise DataError(
            f"klines: open_time at row {row} ({df.get_column('open_time')[row]}) is not on the interval grid"
        )
    return gap_stats(open_ms, step)


def _forward_fill(df: pl.DataFrame, interval: str) -> pl.DataFrame:
    """Insert flat candles (OHLC = previous close, zero volume) into gaps."""
    grid = df.select(
        pl.datetime_range(pl.col("open_time").min(), pl.col("open_time").max(), interval=interval, eager=False).alias(
            "open_time"
        )
    )
    joined = grid.join(df, on="open_time", how="left")
    last_close = pl.col("close").forward_fill()
    return joined.with_columns(
        *(pl.col(c).fill_null(last_close) for c in ("open", "high", "low")),
        pl.col("close").fill_null(last_close),
        *(pl.col(c).fill_null(0.0) for c in ("volume", "quote_volume")),
    ).select(df.columns)


def _with_close_time(df: pl.DataFrame, step: int) -> pl.DataFrame:
    """Archives without close_time get Binance's convention: open_time + interval − 1 ms."""
    derived = pl.col("open_time") + pl.duration(milliseconds=step - 1)
    return df.with_columns(pl.col("close_time").fill_null(derived))
