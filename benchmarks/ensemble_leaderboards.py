"""Walk-forward leaderboards of the five-member ensembles (issue 13's goal): LSTM, GRU, CNN1D, Transformer
and LightGBM, each retrained per fold, and the weighted / stacking / voting ensembles of them fit per fold
on the members' validation forecasts — every row scored on the same out-of-sample points.

    .venv/bin/python benchmarks/ensemble_leaderboards.py --symbol BTCUSDT [--data-dir ../shared/data]

Prints the price, volatility and direction rows and writes benchmarks/results/ensemble_leaderboards_<symbol>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import machine_info, warn_if_busy, write_json  # type: ignore[import-not-found]

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import CsvArchiveSource, SampleSource
from cse_models.ensembles import default_ensembles
from cse_models.evaluation import WalkForwardConfig, evaluate_walk_forward
from cse_models.features.dataset import compute_features
from cse_models.specs import ModelSpec

MEMBERS = (
    ModelSpec("lstm", "lstm_regressor", preset="demo"),
    ModelSpec("gru", "financial_gru", preset="demo"),
    ModelSpec("cnn1d", "financial_cnn1d", preset="demo"),
    ModelSpec("transformer", "transformer_encoder", preset="demo"),
    ModelSpec("lightgbm", "lightgbm", preset="demo"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--data-dir", help="a directory of Binance_<symbol>_1h.csv files instead of the bundled sample")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--budget", default="demo")
    args = parser.parse_args()
    source = CsvArchiveSource(Path(args.data_dir)) if args.data_dir else SampleSource()
    load = warn_if_busy()
    klines, _ = clean_klines(source.fetch(args.symbol, "1h", None, None), "1h")
    data_cfg = DataConfig.honest()
    features = compute_features(klines, data_cfg.feature_set)
    started = time.perf_counter()
    boards = evaluate_walk_forward(
        features,
        data_cfg,
        WalkForwardConfig(n_folds=args.folds),
        models=MEMBERS,
        ensembles=default_ensembles(tuple(m.name for m in MEMBERS)),
        budget=args.budget,
        on_progress=lambda message: print(message, flush=True) if "epoch" not in message else None,
    )
    seconds = time.perf_counter() - started
    rows = {
        head: [(r.name, r.kind, r.skill, r.dm.p_value_model_better) for r in board.rows]
        for head, board in boards.boards.items()
    }
    for head, table in rows.items():
        print(f"\n{head} (reference {boards[head].reference}, {boards[head].n_points} points)")
        for name, kind, skill, p in table:
            print(f"  {name:24s} {kind:9s} skill {skill:+.4%}  DM p {p:.3g}")
    out = {
        "symbol": args.symbol,
        "data": args.data_dir or "bundled sample",
        "folds": args.folds,
        "budget": args.budget,
        "seconds": seconds,
        "rows": rows,
        "load": load,
        "machine": machine_info(),
    }
    path = write_json(f"ensemble_leaderboards_{args.symbol}", out)
    print(f"\n{seconds:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
