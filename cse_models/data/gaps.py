"""Gaps between candles, told apart: closures that are part of a market's calendar, and the unexpected rest.

Crypto trades around the clock, so any gap there is an outage. Forex closes at weekends, stocks every night
and at weekends, and daily stock bars skip Saturdays and Sundays: those gaps are the series' calendar, not
damage, and a reader or cleaner that refused them could not load such a series at all. Two simple rules:
- weekend: the missing time spans a whole UTC Saturday or Sunday, and the gap lasts at most 4 days (a
  weekend with a holiday Friday or Monday next to it);
- overnight: for intraday bars, a gap shorter than a day that recurs — the same number of missing candles
  starting at the same time of day — on at least `RECURRING_DAYS` occasions.
Holidays in mid-week and outages are unexpected gaps; both kinds are counted, none is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000
MAX_WEEKEND_MS = 4 * DAY_MS
RECURRING_DAYS = 3


@dataclass(frozen=True)
class GapStats:
    """Counts of gaps (runs of missing candles) and of the candles they miss, by kind."""

    gaps: int
    missing_candles: int
    longest_gap_candles: int
    calendar_gaps: int
    calendar_missing_candles: int

    @property
    def unexpected_gaps(self) -> int:
        return self.gaps - self.calendar_gaps

    @property
    def unexpected_missing_candles(self) -> int:
        return self.missing_candles - self.calendar_missing_candles


def gap_stats(open_ms: np.ndarray, step: int) -> GapStats:
    """Gap counts of sorted, unique, on-grid open times (epoch ms) at interval `step` ms."""
    open_ms = np.asarray(open_ms, dtype=np.int64)
    diffs = np.diff(open_ms)
    at = np.flatnonzero(diffs > step)
    missing = diffs[at] // step - 1
    calendar = calendar_gap_mask(open_ms[at], open_ms[at + 1], step)
    return GapStats(
        gaps=int(at.size),
        missing_candles=int(missing.sum()),
        longest_gap_candles=int(missing.max(initial=0)),
        calendar_gaps=int(calendar.sum()),
        calendar_missing_candles=int(missing[calendar].sum()),
    )


def calendar_gap_mask(before_ms: np.ndarray, after_ms: np.ndarray, step: int) -> np.ndarray:
    """For each gap between a candle opening at `before_ms` and the next at `after_ms`: is it a closure?"""
    return _spans_weekend_day(before_ms + step, after_ms) | _recurs_overnight(before_ms + step, after_ms, step)


def _spans_weekend_day(start_ms: np.ndarray, end_ms: np.ndarray) -> np.ndarray:
    """Does [start, end) hold a whole UTC Saturday or Sunday, within a gap of at most MAX_WEEKEND_MS?"""
    first_day = -(-start_ms // DAY_MS)  # the first midnight at or after the first missing candle
    spans = np.zeros(start_ms.shape, dtype=bool)
    for k in range(MAX_WEEKEND_MS // DAY_MS):
        day = first_day + k
        whole = (day + 1) * DAY_MS <= end_ms
        spans |= whole & ((day + 3) % 7 >= 5)  # 1970-01-01 was a Thursday: Monday = 0, Saturday = 5
    return spans & (end_ms - start_ms <= MAX_WEEKEND_MS)


def _recurs_overnight(start_ms: np.ndarray, end_ms: np.ndarray, step: int) -> np.ndarray:
    """Intraday gaps shorter than a day whose (time of day, length) repeats on RECURRING_DAYS occasions."""
    short = (end_ms - start_ms < DAY_MS) & (step < DAY_MS)
    if not short.any():
        return short
    keys = np.stack([start_ms % DAY_MS, end_ms - start_ms], axis=1)
    _, inverse, counts = np.unique(keys[short], axis=0, return_inverse=True, return_counts=True)
    recurring = np.zeros(start_ms.shape, dtype=bool)
    recurring[short] = counts[inverse.ravel()] >= RECURRING_DAYS
    return recurring
