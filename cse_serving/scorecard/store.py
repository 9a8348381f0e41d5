"""The scorecard's storage: served predictions and their realized outcomes in one SQLite table.

WAL mode, parameterized SQL only (`statements`), one connection behind a lock (like `auth.TokenStore`),
bounded to `max_rows` (the earliest recorded rows go first).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from cse_models.data.schema import interval_ms
from cse_models.errors import ConfigError, DataError
from cse_models.features.windows import CLASS_NAMES
from cse_models.heads.labels import HoldBand
from cse_serving.schemas import Kline, PredictResponse
from cse_serving.scorecard import statements
from cse_serving.scorecard.results import LiveScore, ScoredPoint
from cse_serving.scorecard.scoring import final_closes, live_score, realized_class

DEFAULT_MAX_ROWS = 200_000
DEFAULT_WINDOWS = {"24h": 86_400, "7d": 604_800}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

Row = tuple[object, ...]


def iso_to_ms(moment: str) -> int:
    """ISO-8601 (`as_of`, e.g. 2024-03-01T01:00:00Z) → unix ms; naive times are UTC."""
    parsed = datetime.fromisoformat(moment)
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    return (parsed - _EPOCH) // _ONE_MS


def _class_probabilities(probabilities: Mapping[str, float]) -> tuple[float, float, float]:
    if set(probabilities) != set(CLASS_NAMES):
        raise DataError(f"direction probabilities must name {list(CLASS_NAMES)}, got {sorted(probabilities)}")
    sell, hold, buy = (float(probabilities[name]) for name in CLASS_NAMES)
    return sell, hold, buy


def _prediction_row(
    answer: PredictResponse, reference: float, target_ms: int, now_ms: int, hold_band: HoldBand | None
) -> Row:
    """The `statements.INSERT` row of an answer: the parts it contains (a withheld head stays null)."""
    bounds = answer.forecast.interval if answer.forecast is not None else None
    probabilities = answer.prediction.probabilities
    sell, hold, buy = _class_probabilities(probabilities) if probabilities is not None else (None, None, None)
    return (
        answer.symbol,
        answer.interval,
        answer.model_version,
        target_ms,
        now_ms,
        reference,
        answer.prediction.close,
        bounds.lower if bounds else None,
        bounds.upper if bounds else None,
        bounds.level if bounds else None,
        sell,
        hold,
        buy,
        hold_band.band if hold_band else None,
        hold_band.sigma if hold_band else None,
    )


class Scorecard:
    """Served predictions and their realized outcomes, in the `predictions` table of a SQLite file."""

    def __init__(
        self, path: str | Path, *, max_rows: int = DEFAULT_MAX_ROWS, clock: Callable[[], float] = time.time
    ) -> None:
        if max_rows < 1:
            raise ConfigError(f"max_rows must be ≥ 1, got {max_rows}")
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self._clock = clock
        self._conn = sqlite3.connect(str(path), check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # A commit per request without an fsync: a power cut may lose the last rows, never corrupt.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self._conn:
                statements.create_tables(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record(
        self, answer: PredictResponse, *, last_close: float | None = None, hold_band: HoldBand | None = None
    ) -> bool:
        """Keep a served answer until its candle closes → False when not kept.

        Kept: the parts the answer contains (a withheld head stays null). `last_close` is needed only for an
        answer without a forecast card (regression and classification models); `hold_band` lets a served
        direction be scored. Not kept: a second answer for the same candle from the same version (the first
        one served is what a client could act on, and asking again must not improve the score), and an
        answer whose candle had already closed."""
        reference = answer.forecast.last_close if answer.forecast is not None else last_close
        if reference is None:
            raise DataError("an answer without a forecast card needs the request's last_close to be scored")
        target_ms = iso_to_ms(answer.as_of)
        now_ms = self._now_ms()
        if target_ms + interval_ms(answer.interval) <= now_ms:
            return False
        row = _prediction_row(answer, reference, target_ms, now_ms, hold_band)
        with self._lock, self._conn:
            inserted = self._conn.execute(statements.INSERT, row).rowcount == 1
            self._conn.execute(statements.PRUNE, (self.max_rows,))
        return inserted

    def observe(self, symbol: str, interval: str, klines: Sequence[Kline]) -> int:
        """Score every unscored prediction of the series whose candle is among `klines` → how many.

        One indexed query over the klines' time range; a kline that has not closed by the clock is ignored
        (its close is not final), and a prediction once scored keeps its realized close."""
        now_ms = self._now_ms()
        closes = final_closes(klines, interval_ms(interval), now_ms)
        if not closes:
            return 0
        with self._lock, self._conn:
            window = (symbol, interval, min(closes), max(closes))
            pending = self._conn.execute(statements.UNSCORED, window).fetchall()
            scored = [
                (closes[target], realized_class(closes[target], last, band, sigma), now_ms, row_id)
                for row_id, target, last, band, sigma in pending
                if target in closes
            ]
            self._conn.executemany(statements.SCORE, scored)
        return len(scored)

    def summary(
        self,
        symbol: str,
        interval: str,
        *,
        version: str | None = None,
        windows: Mapping[str, int] = DEFAULT_WINDOWS,
    ) -> dict[str, LiveScore]:
        """Window name → scores of the predictions whose target candle opened within that many seconds of
        the clock; `version` None pools every version of the series."""
        if any(seconds <= 0 for seconds in windows.values()):
            raise ConfigError(f"windows must be positive seconds, got {dict(windows)}")
        if not windows:
            return {}
        now_ms = self._now_ms()
        since = now_ms - max(windows.values()) * 1000
        with self._lock:
            rows = self._conn.execute(statements.SCORED, (symbol, interval, version, version, since)).fetchall()
        table = np.array(rows, dtype=np.float64).reshape(len(rows), statements.SCORED_COLUMNS)
        return {name: live_score(table[table[:, 0] >= now_ms - seconds * 1000]) for name, seconds in windows.items()}

    def recent_points(self, symbol: str, interval: str, *, limit: int, version: str | None = None) -> list[ScoredPoint]:
        """The latest `limit` scored predictions of a series, oldest first; `version` None pools every
        version (two versions that predicted the same candle both appear). Only scored rows: a prediction
        whose candle has not closed yet stays out, so this never shows a forecast still to come."""
        if limit < 1:
            raise ConfigError(f"limit must be ≥ 1, got {limit}")
        with self._lock:
            rows = self._conn.execute(statements.RECENT_SCORED, (symbol, interval, version, version, limit)).fetchall()
        return [
            ScoredPoint(
                version=version,
                target_ms=target,
                last_close=last,
                close=close,
                lower=lower,
                upper=upper,
                realized_close=realized,
            )
            for version, target, last, close, lower, upper, realized in reversed(rows)
        ]

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
