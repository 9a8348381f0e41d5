"""Calendar fields of unix-millisecond timestamps, vectorized in numpy (no pandas, no per-row Python).

Conventions follow pandas' Timestamp, which the seed used: day_of_week Monday=0, ISO-8601 week
numbers (2021-01-01 is in week 53 of 2020).
"""

from __future__ import annotations

import numpy as np

_MS_PER_DAY = 86_400_000


def calendar_fields(open_time_ms: np.ndarray) -> dict[str, np.ndarray]:
    """→ day_of_week (0=Mon), day_of_month (1..31), week_of_year (ISO 1..53), month (1..12), as int64."""
    days = np.floor_divide(np.asarray(open_time_ms, dtype=np.int64), _MS_PER_DAY)
    if days.size:
        first, last = int(days.min()), int(days.max())
        if last - first < days.size:
            # Intraday candles repeat each day many times: compute every day of the span once, then gather.
            table = _day_fields(np.arange(first, last + 1, dtype=np.int64))
            index = days - first
            return {name: values[index] for name, values in table.items()}
    return _day_fields(days)


def _day_fields(days: np.ndarray) -> dict[str, np.ndarray]:
    day_of_week = (days + 3) % 7  # 1970-01-01 was a Thursday
    dates = days.astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    day_of_month = (dates - months).astype(np.int64) + 1
    month = months.astype(np.int64) % 12 + 1
    thursday = dates + (3 - day_of_week).astype("timedelta64[D]")  # the ISO year is the Thursday's year
    iso_year_start = thursday.astype("datetime64[Y]").astype("datetime64[D]")
    week_of_year = (thursday - iso_year_start).astype(np.int64) // 7 + 1
    return {
        "day_of_week": day_of_week,
        "day_of_month": day_of_month,
        "week_of_year": week_of_year,
        "month": month,
    }
