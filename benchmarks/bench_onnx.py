"""onnxruntime latency of cse's exported models vs the seed's torch-exported LSTM (`artifacts/model.onnx`).

Every architecture in `cse_models.models.MODELS` is built with its config's defaults (9 mur9 features,
regression, random init), exported with the project's `export_onnx` (scaler folded into the graph: a
minmax scaler fit on the bundled BTCUSDT 1h sample's train segment, so the folded affine is realistic) and
timed beside the seed's graph, in one process, with the same session settings on both sides:

  default : `SessionOptions()` untouched (onnxruntime picks the intra-op threads)
  1thread : intra_op_num_threads=1, inter_op_num_threads=1, graph_optimization_level=ORT_ENABLE_ALL

Each `InferenceSession.run` is timed alone (perf_counter_ns) on a fixed input: real raw windows for cse
(its graph scales them), the same windows min-max scaled for the seed (its graph takes scaled input).
Batch 1: `--n` calls after `--warmup`; batch 64: `--n-b64` after `--warmup-b64`. Rounds alternate the model
order.

int8 (issue 13): every cse graph also gets its dynamically quantized twin (`cse_models.export.quantize`,
the variant the publisher ships as model.int8.onnx), timed in the same rounds as `<graph>@int8`, plus the
forecast-task LSTM that serving actually runs (`cse:lstm_forecast`: stationary features + last close in,
the six-output card out, λ = 1 so the price head is not damped). For each twin: fp32 / int8 p50 at batch
1 and 64, and the price head's max |Δclose| / |close| over 64 held-back windows (each alone and all at
once: dynamic quantization depends on the batch). An LSTM size sweep (2 layers, `--lstm-sizes`) says at
which hidden sizes the int8 goal holds. Random weights are not trained ones: the LSTM is also trained
for `--trained-epochs` (regression and forecast) and its int8 variant's price |Δ| and per-head skill
(fp32 beside int8, every test window) are reported as the publisher would record them.

    .venv/bin/python benchmarks/bench_onnx.py [--full] [--n 500] [--warmup 50] [--rounds 1] [--seed-model PATH]
        [--architectures a,b] [--int8 all|lstm|none] [--lstm-sizes 64,128,256] [--trained-epochs 3]
        [--ensemble-preset demo|default|none]

Default run (a few minutes on 2 cores): the ensemble's four network architectures (`DEFAULT_ARCHITECTURES`)
beside the seed, the int8 twins of the LSTM graphs only, no LSTM size sweep, no training, the ensemble
section; 500 calls at batch 1 after 50, 100 at batch 64 after 10. `--full` is the sweep the README's
tables come from: every registered architecture, every int8 twin, the size sweep, the LSTM trained
3 epochs, 2000 / 500 calls.

The five-member ensemble (LSTM, GRU, CNN1D, Transformer, LightGBM; `onnx_ensemble.py`) is timed as ONE
graph beside its members called separately.

Goals stated by the issues: the exported LSTM's latency ≤ 1.0× the seed's; int8 LSTM at batch 1 ≥ 2×
faster than fp32 with the price head's |Δ| < 1e-3 relative; the ensemble in one run at batch 1 p50 ≤ 1 ms
and below the sum of its members' separate calls.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    SEED_DIR,
    machine_info,
    parse_with_sweep,
    percentile,
    print_table,
    progress,
    versions,
    warn_if_busy,
    write_json,
)
from onnx_ensemble import ensemble_section, print_section
from onnx_int8 import (
    FORECAST,
    INT8_PRICE_REL_GOAL,
    INT8_SPEEDUP_GOAL,
    PRIMARY,
    SEQ_LEN,
    int8_summary,
    int8_twins,
    lstm_size_sweep,
    trained_lstm_int8,
)
from ort_timing import SETTINGS, session, time_calls

SEED_INPUT = "sequence"
GOAL = 1.0
DEFAULT_ARCHITECTURES = "lstm_regressor,financial_gru,financial_cnn1d"
FULL = {
    "architectures": "",
    "int8": "all",
    "lstm_sizes": "64,128,256",
    "trained_epochs": 3,
    "n": 2000,
    "warmup": 200,
    "n_b64": 500,
    "warmup_b64": 50,
    "n_sweep": 1000,
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500, help="timed calls at batch 1")
    p.add_argument("--warmup", type=int, default=50, help="warm-up calls at batch 1")
    p.add_argument("--n-b64", type=int, default=100, help="timed calls at batch 64")
    p.add_argument("--warmup-b64", type=int, default=10)
    p.add_argument("--rounds", type=int, default=1, help="repeat every measurement, alternating model order")
    p.add_argument("--seed-model", type=Path, default=SEED_DIR / "artifacts" / "model.onnx")
    p.add_argument("--symbol", default="BTCUSDT", choices=["BTCUSDT", "ETHUSDT"])
    p.add_argument("--keep-dir", type=Path, default=None, help="keep the exported .onnx files here")
    p.add_argument("--json-name", default="bench_onnx")
    p.add_argument("--int8", choices=["all", "lstm", "none"], default="lstm", help="which cse graphs get an int8 twin")
    p.add_argument(
        "--architectures",
        default=DEFAULT_ARCHITECTURES,
        help="comma-separated registry names to time ('' = every registered architecture)",
    )
    p.add_argument("--lstm-sizes", default="", help="hidden sizes of the int8 LSTM sweep, e.g. 64,128,256 ('' = none)")
    p.add_argument("--n-sweep", type=int, default=200, help="timed calls per sweep point at batch 1")
    p.add_argument(
        "--ensemble-preset",
        default="demo",
        help="size of the five ensemble members: demo (what the graph trains) | default (seed sizes) | none",
    )
    p.add_argument(
        "--trained-epochs",
        type=int,
        default=0,
        help="train the LSTM this long for the int8 Δ on real weights (0 = off)",
    )
    return parse_with_sweep(
        p, FULL, "every architecture, every int8 twin, the LSTM size sweep, the LSTM trained, 4× the calls"
    )


def sample_windows(symbol: str, count: int):
    """Real raw feature windows [count, SEQ_LEN, 9] from the sample's test segment + the train-fit scaler."""
    from cse_models.config import DataConfig
    from cse_models.data.clean import clean_klines
    from cse_models.data.file_sources import SAMPLE_INTERVAL, SampleSource
    from cse_models.datasets.graph_inputs import raw_test_windows
    from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler

    klines, _ = clean_klines(SampleSource().fetch(symbol, SAMPLE_INTERVAL, None, None), SAMPLE_INTERVAL)
    features = compute_features(klines, "mur9")
    cfg = DataConfig.seed(seq_len=SEQ_LEN)
    scaler = fit_feature_scaler(features, cfg)
    test = build_datasets(features, scaler, cfg)["test"]
    return scaler, raw_test_windows(test, cfg, limit=count).astype(np.float32)


def export_registry(scaler, windows: np.ndarray, out_dir: Path, names: list[str] | None = None) -> dict[str, dict]:
    """Export every registered architecture (or `names`); returns name → {path, op_types, export_s, parity}."""
    from flax import nnx

    from cse_models.config import DataConfig
    from cse_models.export.onnx import check_parity, export_onnx, op_types
    from cse_models.heads.layout import INPUT_NAME
    from cse_models.models import MODELS, build_model, parameter_count
    from cse_models.training.run import model_config_for

    data_cfg = DataConfig.seed(seq_len=SEQ_LEN)  # the seed's task: regression on mur9
    exported = {}
    for name in names or MODELS.names():
        try:  # the architecture's default (seed) size, fitted to this data: 9 features, seq 24, one output
            cfg = model_config_for(name, data_cfg, len(scaler.feature_names))
            model = build_model(name, cfg, rngs=nnx.Rngs(0))
            t0 = time.perf_counter()
            path = export_onnx(model, scaler, data_cfg, out_dir / f"{name}.onnx")
            export_s = time.perf_counter() - t0
            progress(f"exported {name} ({export_s:.1f} s)")
            parity = check_parity(model, scaler, data_cfg, path, {INPUT_NAME: windows[:7]}).as_dict()
        except Exception as exc:  # one architecture failing to export must not hide the others' numbers
            print(f"note: {name} skipped: export failed: {exc!r}")
            exported[name] = {"error": repr(exc)}
            continue
        exported[name] = {
            "path": str(path),
            "op_types": sorted(op_types(path)),
            "params": int(parameter_count(model)),
            "config": dataclasses.asdict(model.cfg) if hasattr(model, "cfg") else None,
            "export_s": export_s,
            "file_bytes": path.stat().st_size,
            "parity": parity,
        }
    return exported


def export_forecast_lstm(symbol: str, out_dir: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """The graph serving runs: lstm_regressor at its default size on the forecast task (stationary
    features, robust scaler, seq 24), random init, λ = 1 → (path, 64 held-back graph inputs)."""
    from flax import nnx

    from cse_models.config import DataConfig
    from cse_models.data.clean import clean_klines
    from cse_models.data.file_sources import SAMPLE_INTERVAL, SampleSource
    from cse_models.datasets.graph_inputs import graph_inputs
    from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler
    from cse_models.export.onnx import export_onnx
    from cse_models.heads import HeadCalibration
    from cse_models.models import build_model
    from cse_models.training.run import model_config_for

    klines, _ = clean_klines(SampleSource().fetch(symbol, SAMPLE_INTERVAL, None, None), SAMPLE_INTERVAL)
    cfg = DataConfig(seq_len=SEQ_LEN)
    features = compute_features(klines, cfg.feature_set)
    scaler = fit_feature_scaler(features, cfg)
    test = build_datasets(features, scaler, cfg)["test"]
    model = build_model(PRIMARY, model_config_for(PRIMARY, cfg, len(scaler.feature_names)), rngs=nnx.Rngs(0))
    path = export_onnx(model, scaler, cfg, out_dir / "lstm_forecast.onnx", HeadCalibration(shrink=1.0))
    return path, graph_inputs(test, cfg, limit=64)


def main() -> None:
    args = parse_args()
    load_at_start = warn_if_busy()
    import onnxruntime as ort

    from cse_models.heads.layout import INPUT_NAME

    scaler, windows = sample_windows(args.symbol, 64)
    if windows.shape[0] < 64:
        raise SystemExit(f"need 64 test windows, got {windows.shape[0]}")
    scaled = scaler.transform(windows).astype(np.float32)  # what the seed's graph takes

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.keep_dir or Path(tmp)
        exported = export_registry(scaler, windows, out_dir, [a for a in args.architectures.split(",") if a])
        graphs = {f"cse:{n}": (e["path"], {INPUT_NAME: windows}) for n, e in exported.items() if "path" in e}
        notes = []
        int8_info: dict[str, dict] = {}
        sweep: list[dict] = []
        if args.int8 != "none":
            progress(f"int8 twins ({args.int8})")
            forecast_path, forecast_inputs = export_forecast_lstm(args.symbol, out_dir)
            graphs[FORECAST] = (str(forecast_path), forecast_inputs)
            twins, int8_info = int8_twins(graphs, args.int8, out_dir)
            graphs.update(twins)
        if args.seed_model.exists():
            graphs["seed:lstm"] = (str(args.seed_model), {SEED_INPUT: scaled})
        else:
            notes.append(f"seed model {args.seed_model} not found: seed column empty")
        primary = f"cse:{PRIMARY}"
        if primary in graphs and "LSTM" not in exported[PRIMARY]["op_types"]:
            notes.append("cse LSTM export has no native LSTM node (plugin did not apply): expect a slow Loop")

        batches = {1: (args.n, args.warmup), 64: (args.n_b64, args.warmup_b64)}
        settings = SETTINGS
        samples: dict[str, dict[str, dict[int, list[float]]]] = {
            g: {s: {b: [] for b in batches} for s in settings} for g in graphs
        }
        print(
            f"# cse bench_onnx: onnxruntime {ort.__version__}, seq {SEQ_LEN}, 9 features, "
            f"b1 {args.n} calls after {args.warmup}, b64 {args.n_b64} after {args.warmup_b64}, rounds {args.rounds}"
        )
        progress(f"timing {len(graphs)} graphs")
        for rnd in range(args.rounds):
            order = list(graphs) if rnd % 2 == 0 else list(reversed(graphs))
            for setting in settings:
                sessions = {g: session(graphs[g][0], setting) for g in order}
                for batch, (n, warmup) in batches.items():
                    for g in order:
                        feed = {name: np.ascontiguousarray(x[:batch]) for name, x in graphs[g][1].items()}
                        samples[g][setting][batch] += time_calls(sessions[g], feed, n, warmup)
                del sessions
        sizes = [int(h) for h in args.lstm_sizes.split(",") if h.strip()]
        if args.int8 != "none" and sizes:
            progress(f"LSTM size sweep {sizes}")
            sweep = lstm_size_sweep(scaler, windows, sizes, out_dir, args.n_sweep)
        if args.trained_epochs and args.int8 != "none":
            progress(f"training the LSTM {args.trained_epochs} epochs (regression, forecast)")
        trained = (
            trained_lstm_int8(args.symbol, args.trained_epochs, out_dir)
            if args.trained_epochs and args.int8 != "none"
            else []
        )
        if args.ensemble_preset != "none":
            progress(f"five-member ensemble ({args.ensemble_preset} preset)")
        ensemble = (
            ensemble_section(args.symbol, args.ensemble_preset, out_dir, batches)
            if args.ensemble_preset != "none"
            else None
        )
        load_at_end = list(os.getloadavg())

    stats: dict[str, dict] = {}
    for g, per_setting in samples.items():
        stats[g] = {
            s: {
                f"b{b}": {
                    "n": len(v),
                    "p50_us": percentile(v, 50),
                    "p99_us": percentile(v, 99),
                    "mean_us": statistics.fmean(v),
                }
                for b, v in per_batch.items()
            }
            for s, per_batch in per_setting.items()
        }

    seed = stats.get("seed:lstm")
    rows, ratios = [], {}
    for g, st in stats.items():
        for s in settings:
            b1, b64 = st[s]["b1"], st[s]["b64"]
            ratio = b1["p50_us"] / seed[s]["b1"]["p50_us"] if seed else None
            ratios.setdefault(g, {})[s] = ratio
            rows.append(
                [
                    g,
                    s,
                    f"{b1['p50_us']:.1f}",
                    f"{b1['p99_us']:.1f}",
                    f"{b64['p50_us']:.1f}",
                    f"{b64['p99_us']:.1f}",
                    "-" if ratio is None else f"{ratio:.2f}×",
                ]
            )
    print()
    print_table(["graph", "session", "b1 p50 µs", "b1 p99 µs", "b64 p50 µs", "b64 p99 µs", "b1 p50 / seed"], rows)
    met = None
    if seed and primary in ratios:
        met = all(r <= GOAL for r in ratios[primary].values())
        print(f"goal (issue): exported LSTM b1 latency ≤ {GOAL}× seed: {'met' if met else 'not met'}")
    for name, e in exported.items():
        if "path" in e:
            print(f"{name}: ops {e['op_types']}, parity max abs {e['parity']['max_abs_diff']:.2g}")
    int8_rows, int8_goals = int8_summary(stats, int8_info, settings, trained)
    if int8_rows:
        print()
        print_table(
            [
                "graph",
                "session",
                "b1 fp32",
                "b1 int8",
                "b1 ×",
                "b64 fp32",
                "b64 int8",
                "b64 ×",
                "price |Δ| rel",
                "kernels",
            ],
            int8_rows,
        )
        print("(p50 µs; × = fp32 p50 / int8 p50)")
    for g, info in int8_info.items():
        if "error" in info:
            print(f"note: {g} has no int8 twin: {info['error']}")
    if sweep:
        print()
        print_table(
            ["lstm 2 × hidden", "b1 fp32", "b1 int8", "b1 ×", "b64 fp32", "b64 int8", "b64 ×", "price |Δ| rel"],
            [
                [
                    r["hidden"],
                    f"{r['fp32_b1_p50_us']:.1f}",
                    f"{r['int8_b1_p50_us']:.1f}",
                    f"{r['speedup_b1']:.2f}",
                    f"{r['fp32_b64_p50_us']:.0f}",
                    f"{r['int8_b64_p50_us']:.0f}",
                    f"{r['speedup_b64']:.2f}",
                    f"{r['price_max_rel']:.2e}",
                ]
                for r in sweep
            ],
        )
        print("(sweep: regression on mur9, 1thread sessions, random init)")
    if trained:
        print()
        print_table(
            ["trained lstm_regressor", "price |Δ| rel", "skill fp32", "skill int8", "kernels"],
            [
                [
                    f"{t['task']} ({t['epochs']} epochs)",
                    f"{t['parity']['outputs']['close']['max_rel']:.2e}",
                    " ".join(f"{h} {v:+.4f}" for h, v in t["skill"]["fp32"].items()),
                    " ".join(f"{h} {v:+.4f}" for h, v in t["skill"]["int8"].items()),
                    ",".join(f"{k}×{v}" for k, v in t["quantization"]["kernels"].items()),
                ]
                for t in trained
            ],
        )
        print(f"(skill on every {args.symbol} test window, {trained[0]['skill']['points']} points, per head)")
    for line in int8_goals.get("lines", []):
        print(line)
    if ensemble:
        print_section(ensemble, print_table)
    print(f"load average at start {load_at_start.get('loadavg_1_5_15')}, at end {load_at_end}")
    for note in notes:
        print(f"note: {note}")

    path = write_json(
        args.json_name,
        {
            "benchmark": "bench_onnx",
            "sweep": args.sweep,
            "machine": machine_info(),
            "cpu_load_at_start": load_at_start,
            "loadavg_at_end": load_at_end,
            "versions": versions(["onnxruntime", "onnx", "jax", "jaxlib", "flax", "jax2onnx", "numpy"]),
            "protocol": {
                "seq_len": SEQ_LEN,
                "b1": {"n": args.n, "warmup": args.warmup},
                "b64": {"n": args.n_b64, "warmup": args.warmup_b64},
                "rounds": args.rounds,
                "architectures": args.architectures or "all",
                "settings": {
                    "default": "SessionOptions() untouched",
                    "1thread": "intra_op=1, inter_op=1, ORT_ENABLE_ALL",
                },
                "inputs": f"raw {args.symbol} 1h mur9 test windows (cse); the same, minmax-scaled (seed)",
                "seed_model": str(args.seed_model),
            },
            "exported": {n: {k: v for k, v in e.items() if k != "path"} for n, e in exported.items()},
            "goal": {"max_ratio_b1_p50": GOAL, "met": met},
            "int8": {
                "goal": {
                    "min_speedup_b1_p50": INT8_SPEEDUP_GOAL,
                    "max_price_rel": INT8_PRICE_REL_GOAL,
                    **{k: v for k, v in int8_goals.items() if k != "lines"},
                },
                "twins": int8_info,
                "lstm_size_sweep": sweep,
                "trained": trained,
            },
            "ensemble": ensemble,
            "ratio_b1_p50_vs_seed": ratios,
            "stats": stats,
            "raw_us": {
                g: {s: {f"b{b}": [round(v, 1) for v in vals] for b, vals in pb.items()} for s, pb in ps.items()}
                for g, ps in samples.items()
            },
            "notes": notes,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
