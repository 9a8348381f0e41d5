"""`cse-models evaluate --global`: the panel walk-forward from kline files (`evaluation.panel`).

Every file is one symbol (named by its `symbol` column or its file name); `--unseen` files are scored but
never learned from. `--last` cuts every file at the same calendar date (the newest candle of any file), so
the calendar folds see one time axis. Writes `DIR/SYMBOL/leaderboard.json` (+ per head, promotion) and
`DIR/universe.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from cse_models.errors import ConfigError

Progress = Callable[[str], None]


def symbol_of(path: Path, klines: pl.DataFrame) -> str:
    """The symbol a kline file holds: its `symbol` column ("BTC/USDT" → "BTCUSDT") or, without one, the
    file name's `Binance_BTCUSDT_1h` part (else the file name)."""
    if "symbol" in klines.columns and klines.height:
        return str(klines.get_column("symbol")[0]).replace("/", "").replace("-", "").upper()
    match = re.search(r"([A-Z0-9]{5,})", path.stem)
    return match.group(1) if match else path.stem.upper()


def load_panel(
    files: Sequence[Path], unseen: Sequence[Path], interval: str, last: str | None, say: Progress
) -> tuple[dict[str, Any], dict[str, str]]:
    """Read, range-cut and clean every file → ({symbol: PanelSymbol}, {symbol: reason}) for files too short."""
    from cse_models.config import DataConfig
    from cse_models.data.clean import clean_klines
    from cse_models.data.csv_archive import read_kline_file
    from cse_models.data.sources import TimeRange, filter_range
    from cse_models.datasets.segments import compute_features
    from cse_models.evaluation.panel import PanelSymbol
    from cse_models.features.sets import get_feature_set

    read = [(path, path in unseen, read_kline_file(path)) for path in (*files, *unseen)]
    anchor = max(csv.klines.get_column("open_time").max() for _, _, csv in read)
    start, end = TimeRange(last=last).resolve(anchor) if last else (None, None)
    data_cfg = DataConfig()
    need = get_feature_set(data_cfg.feature_set).warmup + data_cfg.seq_len + data_cfg.horizon
    symbols, excluded = {}, {}
    for path, is_unseen, csv in read:
        symbol = symbol_of(path, csv.klines)
        if symbol in symbols or symbol in excluded:
            raise ConfigError(f"{path}: symbol {symbol} is already in the panel (one file per symbol)")
        raw = filter_range(csv.klines, start, end) if last else csv.klines
        if raw.height < need:  # a file that ends before the range (BTC's 2021-06 in a range from 2021-07)
            excluded[symbol] = f"insufficient history: {raw.height} candles in the range, {need} needed"
            say(f"{symbol}: {path.name} — {excluded[symbol]}")
            continue
        klines, report = clean_klines(raw, interval)
        say(
            f"{symbol}{' (unseen)' if is_unseen else ''}: {path.name} read as {csv.description}; "
            f"{report.rows_out} clean klines {report.first_open_time} → {report.last_open_time} "
            f"({report.duplicates_removed} duplicates, {report.missing_candles} missing)"
        )
        if klines.height < need:
            excluded[symbol] = f"insufficient history: {klines.height} candles, {need} needed"
            continue
        symbols[symbol] = PanelSymbol(compute_features(klines, data_cfg.feature_set), unseen=is_unseen)
    return symbols, excluded


def evaluate_global(args: argparse.Namespace, specs: Sequence[Any], say: Progress) -> int:
    """The panel walk-forward of `args` (see `cli._parser`): own members = global members = `specs`, and
    the ensembles of each symbol's own members and of own and global ones (`panel.symbol_forecasters`)."""
    from cse_models.config import DataConfig
    from cse_models.evaluation import WalkForwardConfig
    from cse_models.evaluation.panel import evaluate_panel
    from cse_models.evaluation.universe import universe_summary
    from cse_models.evaluation.written import write_boards

    if not args.csv:
        raise ConfigError("--global needs the panel's files: --csv FILE (one per symbol, repeatable)")
    symbols, short = load_panel(args.csv, args.unseen, args.interval, args.range, say)
    data_cfg = DataConfig(horizon=args.horizon)
    evaluation = evaluate_panel(
        symbols,
        data_cfg,
        WalkForwardConfig(n_folds=args.folds, scheme=args.scheme),
        models=specs,
        global_models=specs,
        ensembles=args.ensembles,
        budget=args.budget,
        weighting=args.weighting,
        dm_loss=args.dm_loss,
        info={"interval": args.interval, "range": args.range or "whole files"},
        on_progress=say,
    )
    evaluation = dataclasses.replace(evaluation, excluded={**short, **evaluation.excluded})
    settings = {
        "models": [spec.as_dict() for spec in specs],
        "budget": args.budget,
        "weighting": args.weighting,
        "range": args.range or "whole files",
        "folds": args.folds,
        "horizon": args.horizon,
    }
    universe = universe_summary(evaluation, settings)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "universe.json").write_text(json.dumps(universe, indent=2, allow_nan=False))
    for symbol, boards in evaluation.boards.items():
        write_boards(boards, boards.models(), args.out / symbol, args.max_p, args.head)
    for symbol, reason in evaluation.excluded.items():
        say(f"{symbol}: not scored — {reason}")
    say(f"wrote {args.out}/universe.json and {args.out}/<SYMBOL>/leaderboard.json for {len(evaluation.boards)} symbols")
    print(json.dumps(universe["symbols"], indent=2), file=sys.stdout)
    return 0
