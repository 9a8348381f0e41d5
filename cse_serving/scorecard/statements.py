"""The scorecard's SQL: the `predictions` table, its one migration, and every statement the store runs.

Parameterized statements only. A prediction's Hold band is stored as the `heads.labels.HoldBand` it was
served with — `hold_band` (the half-width b) and `hold_sigma` (σ of the window; null for a band on the
simple return) — so the realized class is computed by the rule training labels with.
"""

from __future__ import annotations

import math
import sqlite3

SCHEMA = (
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
        hold_band REAL,
        hold_sigma REAL,
        realized_close REAL,
        realized_class INTEGER,
        scored_ms INTEGER,
        UNIQUE (symbol, interval, version, target_ms)
    )
    """,
    "CREATE INDEX IF NOT EXISTS predictions_by_target ON predictions (symbol, interval, target_ms)",
)
INSERT = """
    INSERT INTO predictions (symbol, interval, version, target_ms, recorded_ms, last_close, close, lower, upper,
                             level, p_sell, p_hold, p_buy, hold_band, hold_sigma)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (symbol, interval, version, target_ms) DO NOTHING
"""
# Row ids grow with every insert and only the earliest rows are ever deleted, so the newest `max_rows`
# rows are exactly those above MAX(id) − max_rows: two index lookups, no count.
PRUNE = "DELETE FROM predictions WHERE id <= (SELECT MAX(id) FROM predictions) - ?"
UNSCORED = """
    SELECT id, target_ms, last_close, hold_band, hold_sigma FROM predictions
    WHERE symbol = ? AND interval = ? AND target_ms BETWEEN ? AND ? AND realized_close IS NULL
"""
SCORE = "UPDATE predictions SET realized_close = ?, realized_class = ?, scored_ms = ? WHERE id = ?"
SCORED = """
    SELECT target_ms, last_close, close, lower, upper, level, p_sell, p_hold, p_buy, realized_close, realized_class
    FROM predictions
    WHERE symbol = ? AND interval = ? AND (? IS NULL OR version = ?) AND target_ms >= ?
      AND realized_close IS NOT NULL
"""
SCORED_COLUMNS = 11
RECENT_SCORED = """
    SELECT version, target_ms, last_close, close, lower, upper, realized_close FROM predictions
    WHERE symbol = ? AND interval = ? AND (? IS NULL OR version = ?) AND realized_close IS NOT NULL
    ORDER BY target_ms DESC, id DESC LIMIT ?
"""

_LEGACY_PENDING = """
    SELECT id, sell_below, buy_above FROM predictions WHERE realized_close IS NULL AND buy_above IS NOT NULL
"""
_SET_BAND = "UPDATE predictions SET hold_band = ?, hold_sigma = ? WHERE id = ?"


def create_tables(conn: sqlite3.Connection) -> None:
    """The table and its index, and the band columns added to a table written before they existed."""
    for statement in SCHEMA:
        conn.execute(statement)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(predictions)")}
    if "hold_band" not in columns:
        _add_band_columns(conn)


def _add_band_columns(conn: sqlite3.Connection) -> None:
    """Earlier tables kept the band as log-return bounds (`sell_below`, `buy_above`); their rows still
    waiting for a close get an equivalent band: symmetric bounds ±bσ are b·σ in units of 1 (the rule they
    were recorded under), asymmetric ones log(1 ± band) the classification band on the simple return.
    The old columns stay, unread."""
    conn.execute("ALTER TABLE predictions ADD COLUMN hold_band REAL")
    conn.execute("ALTER TABLE predictions ADD COLUMN hold_sigma REAL")
    pending = conn.execute(_LEGACY_PENDING).fetchall()
    bands = [
        (buy_above, 1.0, row_id) if sell_below == -buy_above else (math.expm1(buy_above), None, row_id)
        for row_id, sell_below, buy_above in pending
    ]
    conn.executemany(_SET_BAND, bands)
