"""Cost curves: how cse's data path, walk-forward evaluation and training scale with their inputs.

1. Data path (features → split → scaler fit → scaled windows, `bench_data.cse_pipeline`) at 10k, 100k and 1M
   hourly rows for each feature set (mur9, ohlc4, stationary — the last with `DataConfig()`: robust
   scaler, forecast targets), on the seed's own kline generator (1M rows: ten 100k-row paths joined); beside
   the seed's pandas pipeline (mur9 only, the one it has) up to `--seed-max-rows` (it needs ~0.1 s per
   1,000 rows, so 1M rows is left out by default).
2. Walk-forward evaluation (`evaluate_walk_forward`, tiny budget: one epoch per model per fold) against
   folds × models on the bundled sample (BTCUSDT 1h), models `lstm_regressor` and `financial_gru` at demo size.
3. Training time per epoch against rows (`fit`, `lstm_regressor` h128 × 2, seq 24, batch 64): the second epoch's
   time, so compilation is not in it.

Each curve should be linear in its input; the script prints the cost per unit at each point so a bend is
visible, and the README says why where it bends. JSON to benchmarks/results/bench_costs.json, the plot to
benchmarks/results/bench_costs.png (matplotlib).

    .venv/bin/python benchmarks/bench_costs.py [--full] [--rows 10000 30000] [--seed-max-rows 100000]

Default run (a few minutes on 2 cores): data path at 10k and 30k rows, walk-forward at 1 and 2 folds,
training at 2,000 and 4,000 rows — enough points to see a slope. `--full` is the sweep the README's
curves come from: 10k / 100k / 1M rows, 1 / 2 / 4 folds, 2,000 / 8,000 / 32,000 training rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS_DIR,
    SEED_DIR,
    machine_info,
    parse_with_sweep,
    print_table,
    versions,
    warn_if_busy,
    write_json,
)
from bench_data import cse_pipeline, load_seed_klines, run_seed, seed_python

FEATURE_SETS = ("mur9", "ohlc4", "stationary")
WF_MODELS = (("lstm", "lstm_regressor"), ("gru", "financial_gru"))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[10_000, 30_000])
    p.add_argument("--seed-max-rows", type=int, default=100_000, help="largest row count the seed pipeline runs")
    p.add_argument("--skip-seed", action="store_true")
    p.add_argument("--folds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--train-rows", type=int, nargs="+", default=[2_000, 4_000])
    p.add_argument("--json-name", default="bench_costs")
    full = {"rows": [10_000, 100_000, 1_000_000], "folds": [1, 2, 4], "train_rows": [2_000, 8_000, 32_000]}
    return parse_with_sweep(p, full, "rows up to 1M, 4 folds, 32,000 training rows")


CHUNK_ROWS = 100_000


def bench_klines(rows: int):
    """The seed generator's klines; above CHUNK_ROWS, chunks of it from successive seeds joined end to end
    (prices rescaled to continue the previous chunk's last close, times shifted): one GBM path over 1M
    hours drifts to prices whose logs are not finite, which no feature set can take."""
    import polars as pl

    if rows <= CHUNK_ROWS:
        return load_seed_klines(SEED_DIR, rows, 42)
    chunks, last_close, shift = [], None, None
    for i in range(-(-rows // CHUNK_ROWS)):
        chunk = load_seed_klines(SEED_DIR, min(CHUNK_ROWS, rows - i * CHUNK_ROWS), 42 + i)
        if last_close is not None:
            factor = last_close / chunk["open"][0]
            step = chunk["open_time"][1] - chunk["open_time"][0]
            offset = shift - chunk["open_time"][0] + step
            chunk = chunk.with_columns(
                *(pl.col(c) * factor for c in ("open", "high", "low", "close")),
                pl.col("open_time") + offset,
                pl.col("close_time") + offset,
            )
        chunks.append(chunk)
        last_close, shift = chunk["close"][-1], chunk["open_time"][-1]
    return pl.concat(chunks).rechunk()


def data_config(feature_set: str):
    from cse_models.config import DataConfig

    return DataConfig(seq_len=24) if feature_set == "stationary" else DataConfig.seed(feature_set=feature_set)


def time_data_path(klines, feature_set: str, runs: int) -> dict:
    config = data_config(feature_set)
    cse_pipeline(klines, config)  # warm-up
    laps: dict[str, list[float]] = {}
    totals = []
    for _ in range(runs):
        t0 = time.perf_counter()
        cse_pipeline(klines, config, laps)
        totals.append((time.perf_counter() - t0) * 1e3)
    return {
        "median_ms": statistics.median(totals),
        "runs_ms": totals,
        "stages_median_ms": {k: statistics.median(v) for k, v in laps.items()},
    }


def data_path_curve(args: argparse.Namespace) -> list[dict]:
    python = None if args.skip_seed else seed_python(None, False)
    points = []
    for rows in args.rows:
        klines = bench_klines(rows)
        for feature_set in FEATURE_SETS:
            runs = 9 if rows <= 100_000 else 3
            r = {"rows": rows, "feature_set": feature_set, **time_data_path(klines, feature_set, runs)}
            r["us_per_row"] = r["median_ms"] * 1e3 / rows
            if feature_set == "mur9" and python and rows <= args.seed_max_rows:
                seed = run_seed(python, SEED_DIR, rows, 24, 1 if rows > 20_000 else 3)
                r["seed_median_ms"] = seed["stages"]["total"]["median_ms"]
                r["seed_over_cse"] = r["seed_median_ms"] / r["median_ms"]
            r["load_1min"] = os.getloadavg()[0]
            points.append(r)
            seed_txt = (
                f"  seed {r['seed_median_ms']:.0f} ms ({r['seed_over_cse']:.0f}×)" if "seed_median_ms" in r else ""
            )
            print(
                f"data  {feature_set:<10} {rows:>9,} rows  {r['median_ms']:9.2f} ms  {r['us_per_row']:.3f} µs/row"
                f"{seed_txt}  (load {r['load_1min']:.2f})"
            )
    return points


def sample_features(data_cfg):
    from cse_models.data.clean import clean_klines
    from cse_models.data.file_sources import SAMPLE_INTERVAL, SampleSource
    from cse_models.datasets.segments import compute_features

    klines, _ = clean_klines(SampleSource().fetch("BTCUSDT", SAMPLE_INTERVAL, None, None), SAMPLE_INTERVAL)
    return compute_features(klines, data_cfg.feature_set)


def walk_forward_curve(args: argparse.Namespace) -> list[dict]:
    from cse_models.config import DataConfig
    from cse_models.evaluation.evaluate import evaluate_walk_forward
    from cse_models.scoring.folds import WalkForwardConfig
    from cse_models.specs import ModelSpec

    data_cfg = DataConfig(seq_len=24)
    features = sample_features(data_cfg)
    specs = [ModelSpec(label, arch, preset="demo") for label, arch in WF_MODELS]
    points = []
    # one untimed run first, so that the first timed point does not carry every compilation
    evaluate_walk_forward(features, data_cfg, WalkForwardConfig(n_folds=1), models=specs, budget="tiny")
    for n_models in (0, 1, 2):
        for folds in args.folds:
            t0 = time.perf_counter()
            evaluate_walk_forward(
                features, data_cfg, WalkForwardConfig(n_folds=folds), models=specs[:n_models], budget="tiny"
            )
            seconds = time.perf_counter() - t0
            r = {"folds": folds, "models": n_models, "seconds": seconds, "load_1min": os.getloadavg()[0]}
            points.append(r)
            print(f"walk-forward {folds} folds × {n_models} models: {seconds:7.2f} s  (load {r['load_1min']:.2f})")
    return points


def training_curve(args: argparse.Namespace) -> list[dict]:
    from flax import nnx

    from cse_models.config import DataConfig
    from cse_models.data.clean import clean_klines
    from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler, window_count
    from cse_models.models import build_model
    from cse_models.training.config import budget
    from cse_models.training.loop import fit
    from cse_models.training.run import model_config_for

    data_cfg = DataConfig.seed(seq_len=24)
    points = []
    for rows in args.train_rows:
        klines, _ = clean_klines(load_seed_klines(SEED_DIR, rows, 42), "1h")
        features = compute_features(klines, "mur9")
        datasets = build_datasets(features, fit_feature_scaler(features, data_cfg), data_cfg)
        cfg = model_config_for("lstm_regressor", data_cfg, datasets["train"].x.shape[1], "default")
        model = build_model("lstm_regressor", cfg, rngs=nnx.Rngs(0))
        result = fit(model, datasets["train"], datasets["val"], data_cfg, budget("tiny", max_epochs=2, patience=5))
        epoch = result.history[-1]
        windows = window_count(datasets["train"], data_cfg)
        r = {
            "rows": rows,
            "train_windows": windows,
            "epoch_seconds": epoch.seconds,
            "first_epoch_seconds_incl_compile": result.history[0].seconds,
            "samples_per_s": epoch.samples_per_s,
            "us_per_window": epoch.seconds * 1e6 / windows,
            "load_1min": os.getloadavg()[0],
        }
        points.append(r)
        print(
            f"train {rows:>7,} rows ({windows:,} windows): epoch {epoch.seconds:6.2f} s, "
            f"{r['us_per_window']:.0f} µs/window  (load {r['load_1min']:.2f})"
        )
    return points


def plot(data: list[dict], wf: list[dict], train: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed; no PNG written")
        return None
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    for fs in FEATURE_SETS:
        pts = [p for p in data if p["feature_set"] == fs]
        ax.loglog([p["rows"] for p in pts], [p["median_ms"] for p in pts], "o-", label=f"cse {fs}")
    seed = [p for p in data if "seed_median_ms" in p]
    if seed:
        ax.loglog([p["rows"] for p in seed], [p["seed_median_ms"] for p in seed], "s--k", label="seed pandas (mur9)")
    ax.set(title="data path: features → scaled windows", xlabel="rows", ylabel="ms")
    ax.legend()
    ax = axes[1]
    for n_models in sorted({p["models"] for p in wf}):
        pts = [p for p in wf if p["models"] == n_models]
        ax.plot([p["folds"] for p in pts], [p["seconds"] for p in pts], "o-", label=f"{n_models} models + baselines")
    ax.set(title="walk-forward (tiny budget)", xlabel="folds", ylabel="s")
    ax.legend()
    ax = axes[2]
    if train:
        ax.plot([p["train_windows"] for p in train], [p["epoch_seconds"] for p in train], "o-", label="epoch")
    ax.set(title="training: lstm_regressor h128×2, seq 24", xlabel="train windows", ylabel="s per epoch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    args = parse_args()
    load_at_start = warn_if_busy()
    data = data_path_curve(args)
    wf = walk_forward_curve(args)
    train = training_curve(args)

    print()
    print_table(
        ["feature set", "rows", "cse ms", "µs/row", "seed ms", "seed/cse"],
        [
            [
                p["feature_set"],
                f"{p['rows']:,}",
                f"{p['median_ms']:.2f}",
                f"{p['us_per_row']:.3f}",
                f"{p['seed_median_ms']:.0f}" if "seed_median_ms" in p else "-",
                f"{p['seed_over_cse']:.0f}×" if "seed_over_cse" in p else "-",
            ]
            for p in data
        ],
    )
    print()
    print_table(["folds", "models", "seconds"], [[p["folds"], p["models"], f"{p['seconds']:.2f}"] for p in wf])
    print()
    print_table(
        ["rows", "train windows", "s/epoch", "µs/window"],
        [
            [f"{p['rows']:,}", f"{p['train_windows']:,}", f"{p['epoch_seconds']:.2f}", f"{p['us_per_window']:.0f}"]
            for p in train
        ],
    )
    loads = [p["load_1min"] for p in data + wf + train]
    print(f"load average (1 min) during the runs: {min(loads):.2f}–{max(loads):.2f}")
    png = plot(data, wf, train, RESULTS_DIR / f"{args.json_name}.png")
    path = write_json(
        args.json_name,
        {
            "benchmark": "bench_costs",
            "sweep": args.sweep,
            "machine": machine_info(),
            "cpu_load_at_start": load_at_start,
            "load_1min_range": [min(loads), max(loads)],
            "versions": versions(["jax", "jaxlib", "flax", "polars", "numpy"]),
            "data_path": data,
            "walk_forward": wf,
            "training": train,
            "plot": None if png is None else str(png.relative_to(RESULTS_DIR.parent.parent)),
        },
    )
    print(f"wrote {path}" + (f" and {png}" if png else ""))


if __name__ == "__main__":
    main()
