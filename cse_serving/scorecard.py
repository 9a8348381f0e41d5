"""The live scorecard: every served prediction, scored against the candle it predicted once that candle has
closed, beside persistence (the next close = the last close).

Walk-forward skill says how a model did on history; live it can still decay (a regime change, a feature
bug only live klines trigger). Keeping what was served and scoring it when the truth arrives measures that
on the walk-forward scale: live skill = 1 − MAE / MAE(persistence), the price head's skill in the manifest.

Only forecasts are kept: an answer whose predicted candle had already closed when it was served (a client
replaying history) is not recorded, since its truth was known and may lie inside the training data.
Realized closes come from klines the service sees after the fact: a later request's klines, or the
server-side fetcher's.

Storage: one SQLite table in WAL mode, parameterized SQL only, one connection behind a lock (like
`auth.TokenStore`), bounded to `max_rows` (the earliest recorded rows go first).
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import numpy as np

from cse_models.data.schema import interval_ms
from cse_models.errors import ConfigError, DataError
from cse_models.features.windows import CLASS_NAMES
from cse_models.heads.layout import SIGMA_FLOOR
from cse_models.scoring.metrics import brier_losses
from cse_serving.schemas import Kline, PredictResponse

DEFAULT_MAX_ROWS = 200_000
DEFAULT_WINDOWS = {"24h": 86_400, "7d": 604_800}
MIN_SCORED = 100
"""Scored predictions below which `degraded` never flags: over fewer candles one news candle moves the MAE
more than any sensible margin."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS predictions (
        id INTEGER PRIMARY KEY,
        symbol TEXT NOT NULL,
        interval TEXT NOT NULL,
        version TEXT NOT NULL,
        target_ms INTEGER NOT NULL,
        recorded_ms INTEGER NOT NULL,
        last_close REAL NOT NULL,
        close REAL,
        lower REAL,
        upper REAL,
        level REAL,
        p_sell REAL,
        p_hold REAL,
        p_buy REAL,
        sell_below REAL,
        buy_above REAL,
        realized_close REAL,
        realized_class INTEGER,
        scored_ms INTEGER,
        UNIQUE (symbol, interval, version, target_ms)
    )
    """,
    "CREATE INDEX IF NOT EXISTS predictions_by_target ON predictions (symbol, interval, target_ms)",
)
_INSERT = """
    INSERT INTO predictions (symbol, interval, version, target_ms, recorded_ms, last_close, close, lower, upper,
                             level, p_sell, p_hold, p_buy, sell_below, buy_above)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (symbol, interval, version, target_ms) DO NOTHING
"""
# Row ids grow with every insert and only the earliest rows are ever deleted, so the newest `max_rows`
# rows are exactly those above MAX(id) − max_rows: two index lookups, no count.
_PRUNE = "DELETE FROM predictions WHERE id <= (SELECT MAX(id) FROM predictions) - ?"
_UNSCORED = """
    SELECT id, target_ms, last_close, sell_below, buy_above FROM predictions
    WHERE symbol = ? AND interval = ? AND target_ms BETWEEN ? AND ? AND realized_close IS NULL
"""
_SCORE = "UPDATE predictions SET realized_close = ?, realized_class = ?, scored_ms = ? WHERE id = ?"
_SCORED = """
    SELECT target_ms, last_close, close, lower, upper, level, p_sell, p_hold, p_buy, realized_close, realized_class
    FROM predictions
    WHERE symbol = ? AND interval = ? AND (? IS NULL OR version = ?) AND target_ms >= ?
      AND realized_close IS NOT NULL
"""
_RECENT_SCORED = """
    SELECT version, target_ms, last_close, close, lower, upper, realized_close FROM predictions
    WHERE symbol = ? AND interval = ? AND (? IS NULL OR version = ?) AND realized_close IS NOT NULL
    ORDER BY target_ms DESC, id DESC LIMIT ?
"""


@dataclass(frozen=True)
class HoldBand:
    """The Hold class of one prediction as log-return bounds: Sell below `sell_below`, Buy above `buy_above`.

    Training labels the return r = log(close[t+h] / close[t]) (cse_models.heads.targets, features.windows):
      forecast task:        z = r / σ against ±b, σ = max(rv_24[t]·√h, SIGMA_FLOOR), b = hold_band_sigmas
                            → r against ±b·σ
      classification task:  e^r − 1 against ±band → r against log(1 − band), log(1 + band)
    σ comes from the request's own klines, so the band is fixed when the prediction is served; the caller
    records it then, and the realized class needs only the realized close. The bounds are the same
    thresholds, not an approximation (a return exactly on a bound may differ by rounding only)."""

    sell_below: float
    buy_above: float

    @classmethod
    def in_sigmas(cls, hold_band_sigmas: float, rv_24: float, horizon: int = 1) -> HoldBand:
        """The forecast task's band: `rv_24` is the raw trailing volatility feature of the window's last row."""
        half = hold_band_sigmas * max(rv_24 * math.sqrt(horizon), SIGMA_FLOOR)
        return cls(-half, half)

    @classmethod
    def simple_return(cls, band: float) -> HoldBand:
        """The classification task's fixed band on the simple return."""
        return cls(math.log1p(-band), math.log1p(band))

    def label(self, log_return: float) -> int:
        """Sell 0 / Hold 1 / Buy 2, the index into CLASS_NAMES."""
        return 2 if log_return > self.buy_above else 0 if log_return < self.sell_below else 1


class ScoredPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One served prediction beside the close that came true: `close`, `lower` and `upper` are null where
    the version withheld that head; `last_close` is what persistence predicted."""

    version: str
    target_ms: int
    last_close: float
    close: float | None
    lower: float | None
    upper: float | None
    realized_close: float


class LiveScore(msgspec.Struct, frozen=True, kw_only=True):
    """Scores of the predictions whose target candle falls in a window; each head over the predictions that
    served it (a withheld head's scores are null, and so is a skill whose reference error is 0).

    `skill` = 1 − `mae` / `mae_persistence` on the same candles, comparable with the walk-forward price skill.
    `brier` is the multi-class Brier score Σ_k (p_k − 1[y = k])²; `coverage` the share of realized closes in
    [lower, upper], to read against its nominal `coverage_level`."""

    n: int
    n_price: int
    mae: float | None
    mae_persistence: float | None
    skill: float | None
    n_direction: int
    direction_accuracy: float | None
    brier: float | None
    n_interval: int
    coverage: float | None
    coverage_level: float | None


def degraded(score: LiveScore, walk_forward_skill: float, *, margin: float, min_n: int = MIN_SCORED) -> bool:
    """Has the live price skill fallen more than `margin` below the model's walk-forward skill?

    False while fewer than `min_n` price predictions are scored, or when either skill is undefined: a flag
    should mean decay, not the noise of a few candles."""
    if score.skill is None or score.n_price < min_n or not math.isfinite(walk_forward_skill):
        return False
    return score.skill < walk_forward_skill - margin


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
                for statement in _SCHEMA:
                    self._conn.execute(statement)

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
        card = answer.forecast
        reference = card.last_close if card is not None else last_close
        if reference is None:
            raise DataError("an answer without a forecast card needs the request's last_close to be scored")
        target_ms = iso_to_ms(answer.as_of)
        now_ms = self._now_ms()
        if target_ms + interval_ms(answer.interval) <= now_ms:
            return False
        bounds = card.interval if card is not None else None
        probabilities = answer.prediction.probabilities
        sell, hold, buy = _class_probabilities(probabilities) if probabilities is not None else (None, None, None)
        row = (
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
            hold_band.sell_below if hold_band else None,
            hold_band.buy_above if hold_band else None,
        )
        with self._lock, self._conn:
            inserted = self._conn.execute(_INSERT, row).rowcount == 1
            self._conn.execute(_PRUNE, (self.max_rows,))
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
            pending = self._conn.execute(_UNSCORED, (symbol, interval, min(closes), max(closes))).fetchall()
            scored = [
                (closes[target], _realized_class(closes[target], last, sell_below, buy_above), now_ms, row_id)
                for row_id, target, last, sell_below, buy_above in pending
                if target in closes
            ]
            self._conn.executemany(_SCORE, scored)
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
            rows = self._conn.execute(_SCORED, (symbol, interval, version, version, since)).fetchall()
        table = np.array(rows, dtype=np.float64).reshape(len(rows), 11)
        return {name: live_score(table[table[:, 0] >= now_ms - seconds * 1000]) for name, seconds in windows.items()}

    def recent_points(self, symbol: str, interval: str, *, limit: int, version: str | None = None) -> list[ScoredPoint]:
        """The latest `limit` scored predictions of a series, oldest first; `version` None pools every
        version (two versions that predicted the same candle both appear). Only scored rows: a prediction
        whose candle has not closed yet stays out, so this never shows a forecast still to come."""
        if limit < 1:
            raise ConfigError(f"limit must be ≥ 1, got {limit}")
        with self._lock:
            rows = self._conn.execute(_RECENT_SCORED, (symbol, interval, version, version, limit)).fetchall()
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


def final_closes(klines: Sequence[Kline], step_ms: int, now_ms: int) -> dict[int, float]:
    """open_time → close of the klines closed by `now_ms` whose close can be a truth (finite, positive):
    observe may run before a request's klines are validated, and a bad one must not poison the scores."""
    return {
        k.opened_ms: k.close
        for k in klines
        if k.opened_ms is not None and k.opened_ms + step_ms <= now_ms and math.isfinite(k.close) and k.close > 0
    }


def _realized_class(close: float, last_close: float, sell_below: float | None, buy_above: float | None) -> int | None:
    if sell_below is None or buy_above is None:
        return None
    return HoldBand(sell_below, buy_above).label(math.log(close / last_close))


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def live_score(table: np.ndarray) -> LiveScore:
    """Scores of scored rows `[n, 11]` in `_SCORED`'s column order (nulls as NaN)."""
    _, last, close, lower, upper, level, p_sell, p_hold, p_buy, realized, label = table.T
    price = ~np.isnan(close)
    mae = _mean(np.abs(close[price] - realized[price]))
    mae_persistence = _mean(np.abs(last[price] - realized[price]))
    skill = 1.0 - mae / mae_persistence if mae is not None and mae_persistence else None
    direction = ~np.isnan(p_sell) & ~np.isnan(label)
    probabilities = np.stack([p_sell, p_hold, p_buy], axis=1)[direction]
    labels = label[direction].astype(np.int64)
    interval = ~np.isnan(lower)
    inside = (lower[interval] <= realized[interval]) & (realized[interval] <= upper[interval])
    return LiveScore(
        n=len(table),
        n_price=int(price.sum()),
        mae=mae,
        mae_persistence=mae_persistence,
        skill=skill,
        n_direction=int(direction.sum()),
        direction_accuracy=_mean(probabilities.argmax(axis=1) == labels),
        brier=_mean(brier_losses(probabilities, labels)),
        n_interval=int(interval.sum()),
        coverage=_mean(inside.astype(np.float64)),
        coverage_level=_mean(level[interval]),
    )
