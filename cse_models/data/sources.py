"""Kline sources behind one protocol, and the time ranges users ask for ("last 5 days", "last year").

A source returns the canonical kline table (`schema.KLINE_SCHEMA`) as delivered — possibly with
duplicates, gaps and bad ticks: cleaning is a separate, reported step (`clean.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import polars as pl

from cse_models.errors import ConfigError


@runtime_checkable
class KlineSource(Protocol):
    """`fetch` returns klines with start ≤ open_time < end (either bound may be None = unbounded)."""

    def fetch(self, symbol: str, interval: str, start: datetime | None, end: datetime | None) -> pl.DataFrame: ...

    def anchor(self, symbol: str, interval: str) -> datetime:
        """The 'now' that relative ranges count back from: the clock for live sources, the last
        candle for archives (so "last year" of a 2021 file means its final year, not an empty range)."""
        ...


_UNITS = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30),
    "year": timedelta(days=365),
}
_LAST_RE = re.compile(r"^last\s+(?:(\d+)\s+)?(minute|hour|day|week|month|year)s?$")


@dataclass(frozen=True)
class TimeRange:
    """A range of candles: either relative (`last`, e.g. "last 5 days") or explicit start/end (UTC)."""

    last: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.last is not None:
            if self.start is not None or self.end is not None:
                raise ConfigError("range: give either `last` or `start`/`end`, not both")
            parse_last(self.last)
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ConfigError(f"range: start {self.start} is not before end {self.end} (empty range)")

    def resolve(self, anchor: datetime) -> tuple[datetime | None, datetime | None]:
        """Concrete (start, end) bounds; `anchor` is the source's notion of now."""
        if self.last is None:
            return _utc(self.start), _utc(self.end)
        end = _utc(anchor) + timedelta(milliseconds=1)  # inclusive of the anchor candle at ms precision
        return end - parse_last(self.last), end


def parse_last(text: str) -> timedelta:
    """'last 5 days' → 5 days, 'last year' → 365 days. Raises ConfigError with the accepted forms."""
    match = _LAST_RE.match(text.strip().lower())
    if not match:
        raise ConfigError(
            f"range {text!r} not understood; use 'last N minutes|hours|days|weeks|months|years' or 'last year'"
        )
    count = int(match.group(1) or 1)
    if count <= 0:
        raise ConfigError(f"range {text!r} is empty")
    return count * _UNITS[match.group(2)]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def filter_range(df: pl.DataFrame, start: datetime | None, end: datetime | None) -> pl.DataFrame:
    if start is not None:
        df = df.filter(pl.col("open_time") >= _utc(start))
    if end is not None:
        df = df.filter(pl.col("open_time") < _utc(end))
    return df
