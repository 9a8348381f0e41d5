"""Walk-forward folds cut by calendar time across a panel of symbols.

A global model learns from every symbol at once, so a fold must be one set of dates for all of them: fold k
trains on every symbol's rows before one date and tests every symbol on one later block. Cutting each
series at its own row counts (`folds.walk_forward_folds` per symbol) would train on another symbol's rows
from inside this symbol's test block — a leak across symbols that makes pooling look better than it is
(measured here: per-series cuts flattered the pooled ridge on every series). The layout is the row folds'
one, in hours of the panel's whole span:

    [ train ........ ]  purge  [ val ]  purge  [ test_k ]      the same dates for every symbol

Each symbol takes part in the folds where its own rows fill every segment with ≥ `min_windows` windows
(`CalendarFold.rows`); series that span different years take part in different folds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cse_models.config import DataConfig
from cse_models.errors import DataError
from cse_models.scoring.folds import Fold, WalkForwardConfig, segment_rows

SEGMENTS = ("train", "val", "test")


@dataclass(frozen=True)
class CalendarFold:
    """One fold's dates, shared by every symbol: the learning span and the test block as half-open open-time
    ranges [start, stop) in unix ms (`bounds["learn"]`, `bounds["test"]`, a purge apart). Within its learning
    rows each symbol keeps its last `val_fraction` (≥ one segment) for early stopping, `purge` rows after
    its train rows — the row folds' rule — so a symbol that started late still has its own val, and no
    learning row of any symbol reaches past `bounds["learn"][1]`."""

    index: int
    bounds: dict[str, tuple[int, int]]
    val_fraction: float
    purge: int

    def slices(self, times_ms: np.ndarray, min_rows: int) -> dict[str, slice]:
        """A symbol's rows in each segment (its open times `times_ms`, ascending)."""
        start, end = (int(i) for i in np.searchsorted(times_ms, self.bounds["learn"], side="left"))
        test = [int(i) for i in np.searchsorted(times_ms, self.bounds["test"], side="left")]
        val_rows = max(min_rows, int((end - start) * self.val_fraction))
        val_start = max(end - val_rows, start)
        return {
            "train": slice(start, max(val_start - self.purge, start)),
            "val": slice(val_start, end),
            "test": slice(*test),
        }

    def rows(self, times_ms: np.ndarray, min_rows: int, segments: tuple[str, ...] = SEGMENTS) -> Fold | None:
        """A symbol's row folds, or None when one of `segments` holds fewer than `min_rows` of its rows
        (`("train", "val")`: what a symbol needs to learn from in this fold; all three to be scored)."""
        slices = self.slices(times_ms, min_rows)
        if any(slices[name].stop - slices[name].start < min_rows for name in segments):
            return None
        return Fold(self.index, slices["train"], slices["val"], slices["test"])

    def shortfall(self, times_ms: np.ndarray, min_rows: int) -> int:
        """How many more rows the symbol needs to take part: a segment's missing rows, plus the purge and
        the val rows a train segment needs in front of it when it has none."""
        slices = self.slices(times_ms, min_rows)
        lengths = {name: part.stop - part.start for name, part in slices.items()}
        missing = sum(max(min_rows - count, 0) for count in lengths.values())
        return missing + (self.purge if lengths["train"] < min_rows else 0)

    @property
    def learn_stop_ms(self) -> int:
        return self.bounds["learn"][1]

    @property
    def test_start_ms(self) -> int:
        return self.bounds["test"][0]


def panel_span(times_by_symbol: Mapping[str, np.ndarray], step_ms: int) -> tuple[int, int]:
    """[first open time of any symbol, last open time of any symbol + one candle) in unix ms."""
    spans = [(int(t[0]), int(t[-1])) for t in times_by_symbol.values() if len(t)]
    if not spans:
        raise DataError("a panel needs at least one symbol with rows")
    return min(s for s, _ in spans), max(e for _, e in spans) + step_ms


def calendar_folds(
    times_by_symbol: Mapping[str, np.ndarray], step_ms: int, data_cfg: DataConfig, config: WalkForwardConfig
) -> list[CalendarFold]:
    """The folds over the panel's whole span (first open time of any symbol to the last of any), in hours
    (`step_ms`): n_folds test blocks of `test_rows` hours (None: span // (n_folds + 1)) at the end, each
    preceded by a purge and the learning span (expanding: from the panel's start; sliding: as long as the
    first fold's)."""
    start, end = panel_span(times_by_symbol, step_ms)
    hours = (end - start) // step_ms
    purge = config.purge_rows(data_cfg)
    segment = segment_rows(data_cfg, config)
    test = config.test_rows or hours // (config.n_folds + 1)
    region = (end - config.n_folds * test * step_ms - purge * step_ms - start) // step_ms
    if test < segment or region < 2 * segment + purge:
        raise DataError(
            f"the panel spans {hours} hours: too few for {config.n_folds} calendar folds with test blocks of "
            f"≥ {segment} hours and a learning span of ≥ {2 * segment + purge} hours before the first one"
        )
    folds = []
    for k in range(config.n_folds):
        test_start = end - (config.n_folds - k) * test * step_ms
        learn_end = test_start - purge * step_ms
        learn_start = start if config.scheme == "expanding" else learn_end - region * step_ms
        bounds = {"learn": (learn_start, learn_end), "test": (test_start, test_start + test * step_ms)}
        folds.append(CalendarFold(k, bounds, config.val_fraction, purge))
    return folds


def calendar_split(
    times_by_symbol: Mapping[str, np.ndarray], step_ms: int, data_cfg: DataConfig, min_windows: int = 16
) -> CalendarFold:
    """The single calendar split a global model is trained and held out on: the panel's span cut like
    `DataConfig.split` cuts one series (train | val | test fractions, purged), one set of dates for all
    symbols — the last `split.test` of the span is never learned from by any symbol."""
    start, end = panel_span(times_by_symbol, step_ms)
    hours = (end - start) // step_ms
    split = data_cfg.split
    config = WalkForwardConfig(
        n_folds=1,
        test_rows=max(int(hours * split.test), data_cfg.seq_len + data_cfg.horizon + min_windows - 1),
        val_fraction=split.val / (split.train + split.val),
        purge=split.purge,
        min_windows=min_windows,
    )
    return calendar_folds(times_by_symbol, step_ms, data_cfg, config)[0]
