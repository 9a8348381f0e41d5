"""The open time of a CryptoDataDownload row: its `unix` cell where that is exact, else its `date` + `time`.

A spreadsheet that re-saves the export writes `unix` as it displays it — `1.64E+12`, the precision lost, so
consecutive hours share one value — splits the text date into `date` (`dd-mm-yy`, or its locale's order) and
`time` (`23:00:00`), and leaves cells it could show in full as they were. So the open time is decided per row:
- a `unix` cell is imprecise when its last written digit is coarser than a second (scientific notation), or,
  where the file shows plain values that collide (equal values, different date + time: a spreadsheet that
  wrote zeros in place of digits), when its trailing zeros are;
- an imprecise row is read from date + time, which must then exist and parse; an exact row keeps its unix.
Exact rows are not read from the text on purpose: in the real LTC file the rows whose unix is in seconds
carry a `time` on a 12-hour clock with AM/PM lost (`12:00:00` for midnight, `11:00:00` for 23:00).

The date order (dd-mm-yy, mm-dd-yy, ...) is worked out from the data: the order under which the most dates
parse and name the day of their row's unix time, within that cell's rounding; a tie is refused as ambiguous.
The text is only checked to the day beyond the rounding (`TEXT_SLACK_MS`): CryptoDataDownload's 2017 text
dates are US Eastern time, and the LTC file's rounded cells fit open times shifted by 1.3–1.7 h.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from cse_models.data.csv_cells import epoch_to_ms, epoch_unit_ms, to_float
from cse_models.errors import DataError

__all__ = ["DAY_MS", "TEXT_SLACK_MS", "cdd_open_times", "date_orders", "unix_steps"]

DAY_MS = 86_400_000
TEXT_SLACK_MS = DAY_MS
EXACT_STEP_MS = 1_000  # a kline opens on a whole second: a cell written to the second is exact
_TIME_FORMATS = ("%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p")
_ISO_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %I:%M %p", "%Y-%m-%d %H:%M")
_STRPTIME = {"dd": "%d", "mm": "%m", "yy": "%y", "yyyy": "%Y"}


def cdd_open_times(df: pl.DataFrame, *, origin: str) -> tuple[np.ndarray, str]:
    """(open times in epoch ms, a line saying how they were read — "" where `unix` is exact everywhere).

    `df` holds every cell as text, with `unix` and `date` columns and perhaps a `time` column."""
    raw = df.get_column("unix")
    values = to_float(df, "unix", origin=origin).to_numpy()
    unix_ms, unit_ms = epoch_to_ms(values, origin=origin), epoch_unit_ms(values)
    step_ms = unix_steps(raw) * unit_ms
    if "time" not in df.columns:
        _refuse_imprecise(raw, step_ms, origin)
        _check_iso_dates(df.get_column("date"), unix_ms, origin)
        return unix_ms, ""
    dates, times = df.get_column("date"), df.get_column("time")
    collide = _collisions(unix_ms, dates, times, step_ms <= EXACT_STEP_MS)
    if collide:
        step_ms = np.maximum(step_ms, unix_steps(raw, trailing_zeros=True) * unit_ms)
    tolerance = step_ms / 2 + TEXT_SLACK_MS
    order = _date_order(dates, unix_ms, tolerance, origin)
    text_ms = _date_time_ms(dates, times, date_orders(dates.drop_nulls().first() or "")[order])
    lost = step_ms > EXACT_STEP_MS
    _check_date_time(text_ms, unix_ms, tolerance, lost, df, origin)
    _refuse_twelve_hour_clock(times, text_ms, lost, origin)
    return np.where(lost, text_ms, unix_ms), _describe(raw, lost, collide, order)


def unix_steps(raw: pl.Series, *, trailing_zeros: bool = False) -> np.ndarray:
    """The step of each cell's last written digit, in the cell's own unit: `1.64E+12` → 1e10, `1513137600` → 1,
    or with `trailing_zeros` 100 (a spreadsheet may write rounded values in full, zeros in place of digits)."""
    text = raw.str.strip_chars()
    decimals = text.str.extract(r"\.(\d*)[eE]").str.len_chars().fill_null(0)
    exponent = text.str.extract(r"[eE]([+-]?\d+)").cast(pl.Int64).fill_null(0)
    steps = np.power(10.0, (exponent - decimals).to_numpy().astype(np.float64))
    if trailing_zeros:
        integer = text.str.contains(r"^\d+$")
        zeros = text.str.len_chars() - text.str.strip_chars_end("0").str.len_chars()
        steps = np.where(integer.to_numpy(), np.power(10.0, zeros.to_numpy().astype(np.float64)), steps)
    return steps


def date_orders(first_date: str) -> dict[str, str]:
    """The orders a date cell like `06-12-21` may be written in → their strptime formats: a four-digit part is
    the year; with two-digit parts only, day-month-year, month-day-year and year-month-day all may be."""
    parts = re.split(r"[^0-9]", first_date.strip())
    separator = re.sub(r"[0-9]", "", first_date.strip())[:1] or "-"
    if len(parts) != 3:
        return {}
    if len(parts[0]) == 4:
        labels = [("yyyy", "mm", "dd")]
    elif len(parts[2]) == 4:
        labels = [("dd", "mm", "yyyy"), ("mm", "dd", "yyyy")]
    else:
        labels = [("dd", "mm", "yy"), ("mm", "dd", "yy"), ("yy", "mm", "dd")]
    return {separator.join(label): separator.join(_STRPTIME[p] for p in label) for label in labels}


def _date_order(dates: pl.Series, unix_ms: np.ndarray, tolerance: np.ndarray, origin: str) -> str:
    """The order under which the most dates name their row's day to within `tolerance` (rows that then
    disagree are refused by `_check_date_time`, naming the row); a tie is ambiguous, none at all unreadable."""
    example = dates.drop_nulls().first()
    orders = date_orders(example or "")
    agreeing = {}
    for label, fmt in orders.items():
        day = dates.str.strptime(pl.Datetime("ms", "UTC"), fmt, strict=False).dt.epoch("ms").to_numpy()
        agreeing[label] = int(np.count_nonzero((unix_ms >= day - tolerance) & (unix_ms < day + DAY_MS + tolerance)))
    best = max(agreeing.values(), default=0)
    fitting = [label for label, n in agreeing.items() if n == best]
    if best and len(fitting) == 1:
        return fitting[0]
    if not best:
        raise DataError(
            f"{origin}: the date column fits no order among {list(orders) or ['dd-mm-yy', 'yyyy-mm-dd']} "
            f"(first date {example!r}): no date parses and names the day of its row's unix time"
        )
    raise DataError(
        f"{origin}: the date column is ambiguous: it reads as {' and as '.join(fitting)} (first date {example!r}), "
        "and the unix column is too imprecise to tell them apart; re-export the file with ISO dates (yyyy-mm-dd)"
    )


def _date_time_ms(dates: pl.Series, times: pl.Series, fmt: str) -> np.ndarray:
    """Epoch ms of date + time (NaN where either is missing or does not parse), the time in any common form."""
    text = dates.str.strip_chars() + " " + times.str.strip_chars()
    parsed = pl.Series("open_time", [None] * len(dates), dtype=pl.Datetime("ms", "UTC"))
    for time_fmt in _TIME_FORMATS:
        parsed = parsed.fill_null(text.str.strptime(pl.Datetime("ms", "UTC"), f"{fmt} {time_fmt}", strict=False))
    return parsed.dt.epoch("ms").cast(pl.Float64).to_numpy()


def _collisions(unix_ms: np.ndarray, dates: pl.Series, times: pl.Series, exact: np.ndarray) -> bool:
    """Do seemingly exact cells repeat one value over rows whose date + time differ?"""
    rows = np.flatnonzero(exact)
    stamp = (dates + " " + times).to_numpy()[rows]
    same = unix_ms[rows][1:] == unix_ms[rows][:-1]
    return bool(np.any(same & (stamp[1:] != stamp[:-1])))


def _check_date_time(
    text_ms: np.ndarray, unix_ms: np.ndarray, tolerance: np.ndarray, lost: np.ndarray, df: pl.DataFrame, origin: str
) -> None:
    """A row read from date + time must have them; any date + time must agree with its unix to its rounding."""
    unreadable = np.flatnonzero(lost & np.isnan(text_ms))
    if unreadable.size:
        row = int(unreadable[0])
        raise DataError(
            f"{origin}: row {row} has no usable open time: its unix {df['unix'][row]!r} has lost its precision "
            f"and its date + time ({df['date'][row]!r} {df['time'][row]!r}) do not parse"
        )
    wrong = np.flatnonzero(np.abs(np.nan_to_num(text_ms - unix_ms)) > tolerance)
    if wrong.size:
        row = int(wrong[0])
        raise DataError(
            f"{origin}: row {row} date + time {df['date'][row]!r} {df['time'][row]!r} disagrees with its unix "
            f"{df['unix'][row]!r} beyond the value's rounding"
        )


def _refuse_twelve_hour_clock(times: pl.Series, text_ms: np.ndarray, lost: np.ndarray, origin: str) -> None:
    """Times read for the open time spanning days with hours 1–12 only are a 12-hour clock that lost AM/PM."""
    used = text_ms[lost]
    if used.size == 0 or np.nanmax(used) - np.nanmin(used) <= DAY_MS:
        return
    hours = (used // 3_600_000) % 24
    if np.all((hours >= 1) & (hours <= 12)) and not times.str.contains(r"(?i)[ap]m").any():
        raise DataError(
            f"{origin}: the time column reads hours 1–12 only over several days: a 12-hour clock that lost its "
            "AM/PM, which cannot give the open time where the unix column has lost its precision"
        )


def _refuse_imprecise(raw: pl.Series, step_ms: np.ndarray, origin: str) -> None:
    lost = np.flatnonzero(step_ms > EXACT_STEP_MS)
    if lost.size:
        row = int(lost[0])
        raise DataError(
            f"{origin}: row {row} has no usable open time: its unix {raw[row]!r} has lost its precision "
            f"(±{step_ms[row] / 2 / 1000:,.0f} s) and the file has no separate date and time columns to read it from"
        )


def _check_iso_dates(dates: pl.Series, open_ms: np.ndarray, origin: str) -> None:
    """Where the text date parses, it must name the same day as the unix column (it guards the unit decision:
    s vs ms vs µs is off by years)."""
    normalized = dates.str.replace(r"^(\d{4}-\d{2}-\d{2}) (\d{2})-([AP]M)$", "$1 $2:00 $3")
    parsed = pl.Series("date", [None] * len(dates), dtype=pl.Datetime("ms"))
    for fmt in _ISO_DATE_FORMATS:
        parsed = parsed.fill_null(normalized.str.strptime(pl.Datetime("ms"), fmt, strict=False))
    text_ms = parsed.dt.epoch("ms").fill_null(pl.Series(open_ms)).to_numpy()
    wrong = np.flatnonzero(np.abs(text_ms - open_ms) > TEXT_SLACK_MS)
    if wrong.size:
        row = int(wrong[0])
        raise DataError(f"{origin}: row {row} unix time {int(open_ms[row])} ms disagrees with its date {dates[row]!r}")


def _describe(raw: pl.Series, lost: np.ndarray, collide: bool, order: str) -> str:
    """The format line's detail: why and for how many rows the open time was read from the text."""
    if not lost.any():
        return f"unix exact; {order} date + time checked against it"
    sci = raw.str.contains(r"[eE]").to_numpy() & lost
    why = "unix in scientific notation" if sci.any() else "unix values collide"
    if sci.any() and collide:
        why += " and colliding"
    exact = int((~lost).sum())
    rest = f"; {exact} rows from their exact unix" if exact else ""
    return f"{why}, precision lost in {int(lost.sum())} rows: open time read from {order} date + time{rest}"
