"""Data-pipeline benchmark: cse_models against the seed ("Make Us Rich") preprocessing, same numbers, same run.

cse paths (timed, both in the same run as the seed):
- mur9 (the seed's own features): canonical kline table (8,760 hourly candles) → mur9 features →
  chronological split → min-max scaler fit on train → scaled float32 splits + regression targets → sliding
  windows (seq_len 24) for train/val/test.
- stationary (`DataConfig()`, what the product publishes): the same klines → stationary features
  (168-row warm-up dropped) → split → robust scaler fit on train → scaled splits + forecast targets (z, range
  ratio, label) → sliding windows.
Each is divided into the seed's mur9 pipeline time: issue 16 asks ≥ 600× for both.
The input is the seed's own generator (`seed_baseline/data.py`, `generate_klines(rows, 42)`) converted once,
outside the timing, into the cse canonical schema, so both sides process the same prices.

seed path: `seed_baseline/pipeline.py --rows N --seq-len 24 --runs 5 --json …`, run in a python that has
pandas and scikit-learn. scikit-learn is not a cse dependency: if the project venv lacks it, a throwaway venv
is made at /tmp/cse-seedvenv (pandas 3.1.1, numpy 2.4.6, scikit-learn 1.9.1, the seed's pins).

    .venv/bin/python benchmarks/bench_data.py [--full] [--runs 20] [--setup-seed] [--skip-seed]

Default run (under a minute on 2 cores): 20 timed cse runs per feature set, 5 of the seed. `--full` takes
100 and 10 (steadier medians on a noisy machine).

Writes benchmarks/results/bench_data.json (figures, versions, machine).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.schema import conform
from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, SEED_DIR, machine_info, parse_with_sweep, versions, warn_if_busy

RESULTS = RESULTS_DIR / "bench_data.json"
SEED_VENV = Path("/tmp/cse-seedvenv")
SEED_PINS = ("pandas==3.1.1", "numpy==2.4.6", "scikit-learn==1.9.1")
GOAL = 600.0  # issue 16: data path ≥ 600× the seed on 8,760 rows, stationary feature sets included


def load_seed_klines(seed_dir: Path, rows: int, seed: int) -> pl.DataFrame:
    """The seed generator's klines (pandas, Binance column names) → the cse canonical polars table."""
    spec = importlib.util.spec_from_file_location("seed_data", seed_dir / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pdf = module.generate_klines(rows, seed)
    open_ms = pdf["timestamp"].to_numpy().astype("datetime64[ms]").astype(np.int64)
    table = pl.DataFrame(
        {
            "open_time": pl.Series(open_ms).cast(pl.Datetime("ms", "UTC")),
            **{c: pdf[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")},
            "close_time": pl.Series(pdf["close_time"].to_numpy(dtype=np.int64)).cast(pl.Datetime("ms", "UTC")),
            "quote_volume": pdf["quote_av"].to_numpy(dtype=np.float64),
            "trades": pdf["trades"].to_numpy(dtype=np.int64),
            "taker_buy_base": pdf["tb_base_av"].to_numpy(dtype=np.float64),
            "taker_buy_quote": pdf["tb_quote_av"].to_numpy(dtype=np.float64),
        }
    )
    klines = conform(table).rechunk()
    check_same_numbers(pdf, klines)
    return klines


def check_same_numbers(pdf, klines: pl.DataFrame) -> None:
    """Both sides see the same candles: identical prices, and mur9 equal to the seed's per-row definition."""
    for c in ("open", "high", "low", "close"):
        assert np.array_equal(pdf[c].to_numpy(), klines[c].to_numpy()), c
    features = compute_features(klines, "mur9")
    ts = pdf["timestamp"].dt
    expected = {
        "day_of_week": ts.day_of_week,
        "day_of_month": ts.day,
        "week_of_year": ts.isocalendar().week,
        "month": ts.month,
        "close_change": pdf["close"] - pdf["open"],
    }
    for name, values in expected.items():
        assert np.array_equal(features[name].to_numpy(), values.to_numpy(dtype=np.float64)), name


def cse_pipeline(klines: pl.DataFrame, config: DataConfig, laps: dict[str, float] | None = None) -> dict:
    t0 = time.perf_counter()
    features = compute_features(klines, config.feature_set)
    t1 = time.perf_counter()
    scaler = fit_feature_scaler(features, config)  # split + fit on the train rows
    t2 = time.perf_counter()
    datasets = build_datasets(features, scaler, config)  # split + scale + targets
    t3 = time.perf_counter()
    windows = {name: part.windows(config.seq_len, config.horizon) for name, part in datasets.items()}
    t4 = time.perf_counter()
    if laps is not None:
        for name, (a, b) in {
            "features": (t0, t1),
            "scaler_fit": (t1, t2),
            "datasets": (t2, t3),
            "windows": (t3, t4),
        }.items():
            laps.setdefault(name, []).append((b - a) * 1e3)
    return windows


def time_cse(klines: pl.DataFrame, config: DataConfig, runs: int, warmup: int) -> dict:
    for _ in range(warmup):
        cse_pipeline(klines, config)
    laps: dict[str, list[float]] = {}
    totals = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            t = time.perf_counter()
            cse_pipeline(klines, config, laps)
            totals.append((time.perf_counter() - t) * 1e3)
    finally:
        gc.enable()
    windows = cse_pipeline(klines, config)
    clean_ms = []
    for _ in range(max(3, runs // 4)):
        t = time.perf_counter()
        clean_klines(klines, "1h")
        clean_ms.append((time.perf_counter() - t) * 1e3)
    return {
        "median_ms": statistics.median(totals),
        "min_ms": min(totals),
        "max_ms": max(totals),
        "runs_ms": totals,
        "stages_median_ms": {name: statistics.median(v) for name, v in laps.items()},
        "windows": {name: list(w.shape) for name, w in windows.items()},
        "clean_klines_median_ms_not_in_total": statistics.median(clean_ms),
    }


def _has_seed_deps(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import pandas, sklearn"], capture_output=True)
    return probe.returncode == 0


def seed_python(explicit: str | None, setup: bool) -> str:
    """A python that can run the seed pipeline; makes /tmp/cse-seedvenv when nothing else can."""
    if explicit:
        if not _has_seed_deps(explicit):
            sys.exit(f"--seed-python {explicit} lacks pandas or scikit-learn")
        return explicit
    if not setup and _has_seed_deps(sys.executable):
        return sys.executable
    venv_python = str(SEED_VENV / "bin" / "python")
    if Path(venv_python).exists() and _has_seed_deps(venv_python):
        return venv_python
    if not setup:
        print(
            f"note: {sys.executable} has no scikit-learn (not a cse dependency); creating the throwaway venv "
            f"{SEED_VENV} with {' '.join(SEED_PINS)} for the seed baseline",
            flush=True,
        )
    subprocess.run(["python3", "-m", "venv", str(SEED_VENV)], check=True)
    subprocess.run([venv_python, "-m", "pip", "install", "-q", *SEED_PINS], check=True)
    return venv_python


def run_seed(python: str, seed_dir: Path, rows: int, seq_len: int, runs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seed.json"
        cmd = [python, "pipeline.py", "--rows", str(rows), "--seq-len", str(seq_len), "--runs", str(runs)]
        subprocess.run([*cmd, "--json", str(out)], cwd=seed_dir, check=True, capture_output=True, text=True)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8760)
    parser.add_argument("--seq-len", type=int, default=24)
    parser.add_argument("--runs", type=int, default=20, help="timed cse runs (median reported)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed cse runs first")
    parser.add_argument("--seed-runs", type=int, default=5, help="runs of the seed pipeline (its own median)")
    parser.add_argument("--seed-dir", type=Path, default=SEED_DIR)
    parser.add_argument("--seed-python", default=None, help="python with pandas + scikit-learn for the seed")
    parser.add_argument("--setup-seed", action="store_true", help=f"use (and create if needed) {SEED_VENV}")
    parser.add_argument("--skip-seed", action="store_true", help="time cse only")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parse_with_sweep(parser, {"runs": 100, "seed_runs": 10}, "5× the cse runs, 2× the seed's")

    configs = {
        "mur9": DataConfig.seed(seq_len=args.seq_len),
        "stationary": DataConfig(seq_len=args.seq_len),
    }
    busy = warn_if_busy()
    klines = load_seed_klines(args.seed_dir, args.rows, 42)
    cse = {name: time_cse(klines, config, args.runs, args.warmup) for name, config in configs.items()}
    for name, figures in cse.items():
        print(
            f"cse {name:10s}: {figures['median_ms']:.3f} ms median of {args.runs} "
            f"(min {figures['min_ms']:.3f}, max {figures['max_ms']:.3f}); "
            + ", ".join(f"{k} {v:.3f}" for k, v in figures["stages_median_ms"].items())
        )
        print(f"    {'':10s}  windows {figures['windows']}")
    clean_ms = cse["mur9"]["clean_klines_median_ms_not_in_total"]
    print(f"clean_klines (not in the totals) {clean_ms:.2f} ms")

    result: dict = {
        "benchmark": "raw klines -> features -> split -> scaler fit -> scaled windows and targets, per feature set",
        "sweep": args.sweep,
        "rows": args.rows,
        "seq_len": args.seq_len,
        "configs": {name: repr(config) for name, config in configs.items()},
        "runs": args.runs,
        "warmup": args.warmup,
        "cse": cse,
        "load_before_start": busy,
        "versions": {"python": platform.python_version(), **versions(["polars", "numpy", "cse"])},
    }
    if not args.skip_seed:
        python = seed_python(args.seed_python, args.setup_seed)
        seed = run_seed(python, args.seed_dir, args.rows, args.seq_len, args.seed_runs)
        seed_ms = seed["stages"]["total"]["median_ms"]
        result["seed"] = {"python": python, "median_ms": seed_ms, **seed}
        result["goal_ratio"] = GOAL
        print(
            f"seed (mur9)   : {seed_ms:.1f} ms median of {args.seed_runs} "
            f"(features {seed['stages']['features']['median_ms']:.1f}, "
            f"sequences {seed['stages']['sequences']['median_ms']:.1f}) with {python}"
        )
        result["ratio_seed_over_cse"] = {}
        for name, figures in cse.items():
            ratio = seed_ms / figures["median_ms"]
            result["ratio_seed_over_cse"][name] = ratio
            verdict = "met" if ratio >= GOAL else "NOT met"
            print(f"ratio {name:10s}: {ratio:.0f}x (seed / cse), goal ≥ {GOAL:.0f}x: {verdict}")
        result["goal_met"] = all(r >= GOAL for r in result["ratio_seed_over_cse"].values())
    result["machine"] = machine_info()  # load average at the end: the run's own load is in it
    print(f"load average (1, 5, 15 min) at the end: {result['machine'].get('loadavg_1_5_15')}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
