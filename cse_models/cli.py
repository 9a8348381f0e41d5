"""`cse-models`: the library from a shell, without Dagster.

cse-models list                                   registered architectures (networks with parameter counts, and
                                                  classical tree models)
cse-models clean --csv FILE [--interval 1h]       the cleaning report of a kline CSV, as JSON
cse-models train --symbol BTCUSDT [--csv FILE] [--model lstm_regressor | lightgbm | …] [--budget demo] [--out DIR]
                 [--publish STORE]                data → train → ONNX (parity-checked) → optional publish
cse-models evaluate --symbol BTCUSDT [--csv FILE] [--folds 3] [--budget demo] [--model-set demo | --models a,b]
                 [--last "last 2 years" | 2y] [--no-ensembles] [--out DIR]
                                                  walk-forward leaderboard vs baselines, DM tests, promotion
cse-models evaluate --global --csv F1 --csv F2 … [--unseen G1 …] [--weighting sqrt] [--last 2y] [--out DIR]
                                                  global members over the panel beside each symbol's own:
                                                  DIR/SYMBOL/leaderboard.json and DIR/universe.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cse_models.errors import CseError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cse-models", description="cse model library")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="registered architectures")
    clean = commands.add_parser("clean", help="cleaning report of a kline CSV")
    clean.add_argument("--csv", required=True, type=Path)
    clean.add_argument("--interval", default="1h")
    train = commands.add_parser("train", help="train, export and optionally publish one model")
    train.add_argument("--symbol", required=True)
    train.add_argument("--csv", type=Path, help="CryptoDataDownload / Binance archive CSV (default: bundled sample)")
    train.add_argument("--interval", default="1h")
    train.add_argument("--range", default="last year", help="e.g. 'last 90 days'")
    train.add_argument("--model", default="lstm_regressor")
    train.add_argument("--budget", default="demo", help="demo | full | tiny")
    train.add_argument("--preset", default="default", help="model size: default (the seed's) | demo (small)")
    train.add_argument("--out", type=Path, default=Path(".cse/cli"))
    train.add_argument("--publish", help="model store to publish into: a directory or an fsspec URL (s3://…)")
    train.add_argument(
        "--force", action="store_true", help="publish every head even where it fails the gate (recorded as forced)"
    )
    evaluate = commands.add_parser("evaluate", help="walk-forward leaderboard of models and baselines")
    evaluate.add_argument("--symbol", help="the series (the bundled sample's, or the one --csv file's)")
    evaluate.add_argument(
        "--csv", type=Path, action="append", default=[], help="kline CSV; repeat with --global: one per symbol"
    )
    evaluate.add_argument("--global", dest="panel", action="store_true", help="global models over all --csv files")
    evaluate.add_argument(
        "--unseen", type=Path, action="append", default=[], help="with --global: scored, never learned from"
    )
    evaluate.add_argument("--weighting", default="rows", help="with --global: symbol weighting (rows | sqrt | equal)")
    evaluate.add_argument("--interval", default="1h")
    evaluate.add_argument("--last", dest="range", help="e.g. 'last 2 years' or 2y (default: the whole file)")
    evaluate.add_argument("--folds", type=int, default=3)
    evaluate.add_argument("--scheme", default="expanding", help="expanding | sliding")
    evaluate.add_argument("--budget", default="demo", help="demo (default, what make demo trains) | tiny | full")
    evaluate.add_argument("--model-set", default="demo", help="demo (default: the LSTM and LightGBM) | zoo | full")
    evaluate.add_argument("--models", help="comma-separated registered models (instead of --model-set)")
    evaluate.add_argument("--preset", default="demo", help="with --models: demo (small, default) | default")
    evaluate.add_argument(
        "--no-ensembles",
        dest="ensembles",
        action="store_false",
        help="skip the weighted / stacking / voting ensembles scored beside two or more models",
    )
    evaluate.add_argument(
        "--head",
        "--task",
        dest="head",
        default="all",
        choices=("price", "interval", "volatility", "direction", "all"),
        help="the head to report, or all (--task: its former name)",
    )
    evaluate.add_argument("--horizon", type=int, default=1, help="candles ahead (e.g. 1, 4, 24)")
    evaluate.add_argument("--dm-loss", default="absolute", help="absolute | squared (price, volatility)")
    evaluate.add_argument("--max-p", type=float, default=0.05, help="promotion: DM p-value level")
    evaluate.add_argument("--out", type=Path, default=Path(".cse/evaluate"))
    return parser


def _list(_: argparse.Namespace) -> int:
    from cse_models.classical import CLASSICAL
    from cse_models.models.__main__ import print_models

    print_models()
    for name in CLASSICAL:
        entry = CLASSICAL.get(name)
        print(f"{name:28} {'classical':12} {'(trees)':>10}  {entry.description}")
    return 0


def _load_klines(args: argparse.Namespace):
    from cse_models.data.clean import clean_klines
    from cse_models.data.csv_archive import read_kline_csv
    from cse_models.data.file_sources import SampleSource
    from cse_models.data.sources import TimeRange, filter_range

    if getattr(args, "symbol", None) and not args.csv:
        source = SampleSource()
        start, end = TimeRange(last=args.range).resolve(source.anchor(args.symbol, args.interval))
        raw = source.fetch(args.symbol, args.interval, start, end)
    else:
        raw = read_kline_csv(args.csv)
        if getattr(args, "range", None):
            start, end = TimeRange(last=args.range).resolve(raw.get_column("open_time").max())
            raw = filter_range(raw, start, end)
    return clean_klines(raw, args.interval)


def _clean(args: argparse.Namespace) -> int:
    from cse_models.data.clean import clean_klines
    from cse_models.data.csv_archive import read_kline_file

    csv = read_kline_file(args.csv)
    print(f"{args.csv}: {csv.klines.height} rows read as {csv.description}", file=sys.stderr)
    _, report = clean_klines(csv.klines, args.interval)
    print(json.dumps({"format": csv.format, **report.as_dict()}, indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    from cse_models.config import DataConfig
    from cse_models.datasets.graph_inputs import graph_inputs
    from cse_models.datasets.prepared import PreparedSeries
    from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler
    from cse_models.evaluation import WalkForwardConfig, evaluate_walk_forward, head_decisions
    from cse_models.members import member_kind
    from cse_models.publication.assemble import Candidates, publish_candidates
    from cse_models.specs import ModelSpec
    from cse_models.store import open_store
    from cse_models.training.config import budget

    klines, report = _load_klines(args)
    print(
        f"{args.symbol}: {report.rows_out} clean klines ({report.duplicates_removed} duplicates, "
        f"{report.bad_ticks} bad ticks, {report.missing_candles} missing)",
        file=sys.stderr,
    )
    data_cfg = DataConfig()
    spec = ModelSpec(args.model, args.model, args.preset)
    kind = member_kind(spec.architecture)
    kind.validate(spec)
    features = compute_features(klines, data_cfg.feature_set)
    scaler = fit_feature_scaler(features, data_cfg)
    datasets = build_datasets(features, scaler, data_cfg)
    train_cfg = budget(args.budget)
    out = args.out / args.symbol / args.model
    progress = EpochProgress(train_cfg.max_epochs, sys.stderr)
    trained = kind.train(spec, PreparedSeries(datasets, data_cfg, scaler), train_cfg, out, on_epoch=progress)
    progress.close()
    exported = kind.export(
        trained, scaler, data_cfg, out / "model.onnx", graph_inputs(datasets["test"], data_cfg), model_name=spec.name
    )
    summary = {"model_dir": str(out), "onnx": exported.path, "metrics": trained.metrics, "parity": exported.parity}
    if args.publish:
        # The gate judges walk-forward skill, not validation: the spec is evaluated as the graph would.
        boards = evaluate_walk_forward(features, data_cfg, WalkForwardConfig(), models=[spec], budget=args.budget)
        candidates = Candidates(
            symbol=args.symbol,
            interval=args.interval,
            prepared=PreparedSeries(datasets, data_cfg, scaler),
            specs=(spec,),
            trained={spec.name: trained},
            exported={spec.name: exported},
            boards=boards,
            decisions={spec.name: head_decisions(boards, spec.name, force=args.force)},
            budget=dataclasses.asdict(train_cfg),
        )
        published = publish_candidates(open_store(args.publish), candidates, workdir=out / "publish")
        summary["published_version"] = published.manifest.version
        summary["heads"] = {
            h.name: {"publish": h.publish, "skill": h.skill, "reason": h.reason} for h in published.manifest.heads
        }
    print(json.dumps(summary, indent=2))
    return 0


_SHORT_RANGE = {"min": "minutes", "h": "hours", "d": "days", "w": "weeks", "mo": "months", "y": "years"}


def _range_text(text: str | None) -> str | None:
    """'2y' → 'last 2 years', '90d' → 'last 90 days'; anything else is passed on as written."""
    match = re.fullmatch(r"\s*(\d+)\s*(min|mo|h|d|w|y)\s*", text or "")
    return f"last {match.group(1)} {_SHORT_RANGE[match.group(2)]}" if match else text


def _evaluate_specs(args: argparse.Namespace, say) -> tuple[list, tuple]:
    """The models to walk forward — `--models` at `--preset`, else the `--model-set` (default: the demo set,
    what `make demo` publishes) — and their ensembles; says which, and the budget."""
    from cse_models.ensembles import default_ensembles
    from cse_models.model_sets import MODEL_SETS
    from cse_models.specs import ModelSpec
    from cse_models.training.config import budget

    if args.models:
        specs = [ModelSpec(m.strip(), m.strip(), args.preset) for m in args.models.split(",") if m.strip()]
    else:
        specs = list(MODEL_SETS.get(args.model_set))
    ensembles = default_ensembles(tuple(spec.name for spec in specs)) if args.ensembles else ()
    train_cfg = budget(args.budget)
    source = "--models" if args.models else f"model set {args.model_set!r}"
    say(
        f"models ({source}): {', '.join(f'{s.name} ({s.architecture}, {s.preset} preset)' for s in specs)}"
        f"{' + ' + ', '.join(e.name for e in ensembles) if ensembles else ''}; budget {args.budget!r} "
        f"(≤ {train_cfg.max_epochs} epochs, patience {train_cfg.patience})"
    )
    return specs, ensembles


def _evaluate(args: argparse.Namespace) -> int:
    from cse_models.config import DataConfig
    from cse_models.datasets.segments import compute_features
    from cse_models.errors import ConfigError, DataError
    from cse_models.evaluation import WalkForwardConfig, evaluate_walk_forward, rows_needed
    from cse_models.evaluation.written import write_boards
    from cse_models.features.sets import get_feature_set

    args.range = _range_text(args.range)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    specs, ensembles = _evaluate_specs(args, progress)
    if args.panel:
        from cse_models.cli_global import evaluate_global

        return evaluate_global(args, specs, progress)
    if args.unseen or len(args.csv) > 1:
        raise ConfigError("several --csv files or --unseen are a panel: add --global")
    if not args.symbol:
        raise ConfigError("name the series: --symbol SYMBOL (with or without --csv)")
    args.csv = args.csv[0] if args.csv else None
    klines, report = _load_klines(args)
    progress(f"{args.symbol}: {report.rows_out} clean klines {report.first_open_time} → {report.last_open_time}")
    data_cfg = DataConfig(horizon=args.horizon)
    config = WalkForwardConfig(n_folds=args.folds, scheme=args.scheme)
    warmup = get_feature_set(data_cfg.feature_set).warmup
    need = rows_needed(data_cfg, config) + warmup  # in klines: the feature set's warm-up rows have no features
    if klines.height < need:
        raise DataError(
            f"insufficient history: {klines.height} candles, {need} needed for {config.n_folds} walk-forward "
            f"folds with seq_len {data_cfg.seq_len}, horizon {data_cfg.horizon}, ≥ {config.min_windows} windows "
            f"per segment and the {warmup}-candle warm-up of feature set {data_cfg.feature_set!r}"
        )
    boards = evaluate_walk_forward(
        compute_features(klines, data_cfg.feature_set),
        data_cfg,
        config,
        models=specs,
        ensembles=ensembles,
        budget=args.budget,
        dm_loss=args.dm_loss,
        info={"symbol": args.symbol, "interval": args.interval, "range": args.range or "whole file"},
        on_progress=progress,
    )
    out = args.out / args.symbol
    names = [s.name for s in specs] + [e.name for e in ensembles]
    markdown = write_boards(boards, names, out, args.max_p, args.head)
    progress(f"wrote {out}/leaderboard.json (every head), {out}/<head>/leaderboard.json and promotion.json")
    print(markdown)
    return 0


class EpochProgress:
    """A one-line progress bar on a terminal (plain lines otherwise): the CLI's, never the library's."""

    def __init__(self, total: int, stream, width: int = 24) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.started = time.perf_counter()
        self.tty = stream.isatty()

    def __call__(self, entry) -> None:
        done = entry.epoch + 1
        bar = "#" * (self.width * done // self.total) + "-" * (self.width - self.width * done // self.total)
        text = (
            f"[{bar}] epoch {done}/{self.total}  train {entry.train_loss:.6f}  val {entry.val_loss:.6f}  "
            f"{entry.samples_per_s:,.0f} samples/s  {time.perf_counter() - self.started:.0f}s"
        )
        self.stream.write(("\r" + text) if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


COMMANDS = {"list": _list, "clean": _clean, "train": _train, "evaluate": _evaluate}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        return COMMANDS[args.command](args)
    except CseError as exc:
        print(f"cse-models: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
