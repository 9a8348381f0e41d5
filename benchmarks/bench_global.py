"""Global models (issue 22): how the panel's symbol weighting changes what the short series get, and how
long a symbol the global model has never seen takes from its archive to a published version.

Data: the five shared series (../shared/data: BTC, ETH to 2021-06; LTC, DOT, SOL to 2021-12, the last
three as a spreadsheet re-saved them), cut to the same `--last` calendar range.

  weighting : the panel walk-forward (`evaluation.panel.evaluate_panel`, calendar folds) of the global
              members alone, once per symbol weighting (`datasets.pooled.SYMBOL_WEIGHTINGS`: rows — every
              window alike, the default; sqrt — a symbol's total ∝ √windows; equal — every symbol alike):
              per symbol, the global member's walk-forward skill per head (volatility also against HAR).
  zero-shot : a global member trained on every symbol but `--unseen`, then for the unseen one, timed:
              read its CSV, clean, features, the held-out check of the graph (`check_global`), publish into
              a local store — no training; the goal is within 60 s on 2 cores from a year of klines.

    .venv/bin/python benchmarks/bench_global.py [--full] [--models lightgbm] [--last 2y] [--unseen SOLUSDT]

Default run (a few minutes on 2 cores): LightGBM (the demo preset). `--full` adds the demo LSTM.
Writes benchmarks/results/bench_global.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine_info, parse_with_sweep, print_table, progress, versions, write_json

DATA = ROOT.parent / "shared" / "data"
FILES = {
    "BTCUSDT": DATA / "Binance_BTCUSDT_1h.csv",
    "ETHUSDT": DATA / "Binance_ETHUSDT_1h.csv",
    "LTCUSDT": DATA / "excel-resaved" / "Binance_LTCUSDT_1h.csv",
    "DOTUSDT": DATA / "excel-resaved" / "Binance_DOTUSDT_1h.csv",
    "SOLUSDT": DATA / "excel-resaved" / "Binance_SOLUSDT_1h.csv",
}
WEIGHTINGS = ("rows", "sqrt", "equal")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="lightgbm", help="global members (comma-separated architectures)")
    p.add_argument("--last", default="last 2 years", help="the calendar range of every series")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--unseen", default="SOLUSDT", help="the symbol served zero-shot")
    return parse_with_sweep(p, {"models": "lightgbm,lstm_regressor"}, "the demo LSTM beside LightGBM")


def load(last: str) -> dict:
    """Every shared series cleaned and cut to the same calendar range, as `cse-models evaluate --global`
    reads them (`cli_global.load_panel`) → {symbol: feature table}."""
    from cse_models.cli_global import load_panel

    symbols, excluded = load_panel(list(FILES.values()), [], "1h", last, progress)
    for symbol, reason in excluded.items():
        progress(f"{symbol}: {reason}")
    return {symbol: panel.features for symbol, panel in symbols.items()}


def weighting_rows(features: dict, specs: list, folds: int) -> tuple[list, dict]:
    from cse_models.config import DataConfig
    from cse_models.evaluation.panel import PanelSymbol, evaluate_panel
    from cse_models.evaluation.universe import universe_summary
    from cse_models.scoring.folds import WalkForwardConfig

    symbols = {symbol: PanelSymbol(frame) for symbol, frame in features.items()}
    rows, figures = [], {}
    for weighting in WEIGHTINGS:
        started = time.perf_counter()
        evaluation = evaluate_panel(
            symbols,
            DataConfig(),
            WalkForwardConfig(n_folds=folds),
            models=(),
            global_models=specs,
            budget="demo",
            weighting=weighting,
            on_progress=lambda _: None,
        )
        summary = universe_summary(evaluation)["symbols"]
        progress(f"weighting {weighting}: {time.perf_counter() - started:.0f} s")
        figures[weighting] = summary
        for symbol, entry in summary.items():
            heads = entry["heads"]
            rows.append(
                [
                    symbol,
                    weighting,
                    f"{heads['price']['best_global']['skill']:+.4f}",
                    f"{heads['volatility']['best_global']['skill']:+.4f}",
                    f"{heads['volatility']['global_vs_har']:+.4f}",
                    f"{heads['direction']['best_global']['skill']:+.4f}",
                    f"{min(heads['interval']['best_global']['coverage_per_fold']):.3f}",
                ]
            )
    return rows, figures


def zero_shot(features: dict, specs: list, unseen: str) -> dict:
    """Train the global members without `unseen`, then time its path from the archive to a store version."""
    from cse_models.config import DataConfig
    from cse_models.data.clean import clean_klines
    from cse_models.data.csv_archive import read_kline_csv
    from cse_models.data.sources import TimeRange, filter_range
    from cse_models.datasets.segments import compute_features
    from cse_models.publication.assemble import publish_candidates
    from cse_models.publication.global_model import check_global, global_candidates, train_global
    from cse_models.store import open_store
    from cse_models.training.config import budget

    learning = {symbol: frame for symbol, frame in features.items() if symbol != unseen}
    work = Path(tempfile.mkdtemp(prefix="bench_global_"))
    started = time.perf_counter()
    models = [train_global(spec, learning, DataConfig(), budget("demo"), work / spec.name) for spec in specs]
    trained_s = time.perf_counter() - started
    started = time.perf_counter()
    raw = read_kline_csv(FILES[unseen])
    start, end = TimeRange(last="last year").resolve(raw.get_column("open_time").max())
    klines, _ = clean_klines(filter_range(raw, start, end), "1h")
    frame = compute_features(klines, DataConfig().feature_set)
    boards = check_global(models, unseen, frame)
    candidates = global_candidates(models, unseen, "1h", frame, boards, budget("demo"))
    manifest = publish_candidates(open_store(str(work / "store")), candidates, workdir=work / "publish").manifest
    served_s = time.perf_counter() - started
    heads = {h.name: {"skill": h.skill, "publish": h.publish} for h in manifest.heads}
    progress(f"zero-shot {unseen}: {served_s:.1f} s from its CSV to version {manifest.version}")
    return {"train_global_s": trained_s, "zero_shot_s": served_s, "klines": klines.height, "heads": heads}


def main() -> None:
    args = parse_args()
    from cse_models.specs import ModelSpec

    missing = [str(path) for path in FILES.values() if not path.is_file()]
    if missing:
        sys.exit(f"the shared series are missing: {missing}")
    specs = [ModelSpec(name, name, "demo") for name in args.models.split(",")]
    features = load(args.last)
    rows, figures = weighting_rows(features, specs, args.folds)
    print_table(["symbol", "weighting", "price", "volatility", "vol vs HAR", "direction", "min coverage"], rows)
    served = zero_shot(features, specs, args.unseen)
    print(f"zero-shot {args.unseen}: {served['zero_shot_s']:.1f} s (goal ≤ 60 s); heads {served['heads']}")
    path = write_json(
        "bench_global",
        {
            "sweep": args.sweep,
            "settings": {"models": args.models, "last": args.last, "folds": args.folds, "unseen": args.unseen},
            "weighting": figures,
            "zero_shot": served,
            "goal_zero_shot_s": 60,
            "machine": machine_info(),
            "versions": versions(["jax", "lightgbm", "onnxruntime", "polars"]),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
