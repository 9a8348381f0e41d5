"""Classical ensemble members (issue 13): training time on the bundled sample and onnxruntime latency of the
exported one-graph member, beside the demo LSTM, in one run on one machine.

Data: the bundled BTCUSDT 1h sample, `DataConfig()` (stationary features, seq_len 24, robust
scaler fit on the train segment), the single chronological split the `model_<name>` assets train on.
Each spec goes through its member kind exactly as the Dagster asset does (`member_kind(...).train`, then
`.export` with the parity check), into a temporary directory:

  fit s     : `MemberKind.fit` wall time (libraries imported before): for the classical members the
              window summaries, the tree fit and the calibration; for the LSTM the whole early-stopped fit
              on `--lstm-budget` (JIT compilation included, as in every real run);
  train s   : `MemberKind.train` (a second fit, plus the model directory and the validation metrics);
  b1 / b64  : `InferenceSession.run` of the exported graph (raw windows + last close in, the forecast card
              out), intra_op_num_threads=1, ORT_ENABLE_ALL, each call timed alone (perf_counter_ns):
              `--n` calls at batch 1 after `--warmup`, `--n // 4` at batch 64.

    .venv/bin/python benchmarks/bench_classical.py [--full] [--presets demo] [--lstm-budget demo] [--n 500]

Default run (a few minutes on 2 cores): the demo preset of each classical member beside the demo LSTM,
500 calls at batch 1. `--full` adds the default (seed-size) presets and takes 2000 calls.

Writes benchmarks/results/bench_classical.json (figures, raw latency percentiles, machine info, versions).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, parse_with_sweep, percentile, print_table, versions, warn_if_busy, write_json

SYMBOL = "BTCUSDT"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="demo", help="classical presets to time (comma-separated)")
    p.add_argument("--lstm-budget", default="demo", help="training budget of the LSTM beside them ('' to skip)")
    p.add_argument("--n", type=int, default=500, help="timed calls at batch 1 (batch 64: n // 4)")
    p.add_argument("--warmup", type=int, default=50, help="warm-up calls per batch size")
    full = {"presets": "demo,default", "n": 2000, "warmup": 200}
    return parse_with_sweep(p, full, "the default (seed-size) presets beside the demo ones, 4× the calls")


def prepare():
    from cse_models.config import DataConfig
    from cse_models.data.clean import clean_klines
    from cse_models.data.file_sources import SampleSource
    from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler

    klines, _ = clean_klines(SampleSource().fetch(SYMBOL, "1h", None, None), "1h")
    data_cfg = DataConfig()
    features = compute_features(klines, data_cfg.feature_set)
    scaler = fit_feature_scaler(features, data_cfg)
    return data_cfg, scaler, build_datasets(features, scaler, data_cfg)


def latency(path: str, inputs: dict[str, np.ndarray], batch: int, n: int, warmup: int) -> dict[str, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    rows = np.arange(batch) % inputs["features"].shape[0]
    feed = {name: np.ascontiguousarray(values[rows]) for name, values in inputs.items()}
    for _ in range(warmup):
        session.run(None, feed)
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        session.run(None, feed)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return {"n": n, "p50_us": round(percentile(samples, 50), 1), "p99_us": round(percentile(samples, 99), 1)}


def measure(spec, data_cfg, scaler, datasets, train_cfg, args, workdir: Path) -> dict:
    from cse_models.datasets.graph_inputs import graph_inputs
    from cse_models.datasets.prepared import PreparedSeries
    from cse_models.members import member_kind

    kind = member_kind(spec.architecture)
    started = time.perf_counter()
    kind.fit(spec, PreparedSeries(datasets, data_cfg, scaler), train_cfg)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    trained = kind.train(spec, PreparedSeries(datasets, data_cfg, scaler), train_cfg, workdir / spec.name)
    train_seconds = time.perf_counter() - started
    inputs = graph_inputs(datasets["test"], data_cfg)
    exported = kind.export(trained, scaler, data_cfg, workdir / spec.name / "model.onnx", inputs, model_name=spec.name)
    return {
        "name": spec.name,
        "architecture": spec.architecture,
        "preset": spec.preset,
        "kind": kind.name,
        "fit_seconds": round(fit_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "train_windows": int(datasets["train"].y.shape[0]),
        "parameters": trained.parameters,
        "onnx_kib": round(Path(exported.path).stat().st_size / 1024, 1),
        "parity_max_abs": exported.parity["max_abs_diff"],
        "validation_skill": trained.metrics["skill"],
        "b1": latency(exported.path, inputs, 1, args.n, args.warmup),
        "b64": latency(exported.path, inputs, 64, max(args.n // 4, 1), max(args.warmup // 4, 1)),
    }


def main() -> None:
    from cse_models.specs import ModelSpec
    from cse_models.training.config import budget

    args = parse_args()
    busy = warn_if_busy()
    import jax  # noqa: F401  (imported before any timing: no member pays for it)
    import lightgbm  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    data_cfg, scaler, datasets = prepare()
    specs = [
        ModelSpec(f"{arch}_{preset}", arch, preset)
        for preset in args.presets.split(",")
        if preset
        for arch in ("lightgbm", "random_forest")
    ]
    if args.lstm_budget:
        specs.append(ModelSpec(f"lstm_demo_{args.lstm_budget}", "lstm_regressor", "demo"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_classical_") as tmp:
        for spec in specs:
            train_cfg = budget(args.lstm_budget if spec.architecture == "lstm_regressor" else "tiny")
            rows.append(measure(spec, data_cfg, scaler, datasets, train_cfg, args, Path(tmp)))
            print(f"{spec.name}: fit {rows[-1]['fit_seconds']} s", flush=True)
    print()
    print_table(
        ("member", "fit s", "train s", "nodes/params", "KiB", "b1 p50 µs", "b1 p99 µs", "b64 p50 µs", "b64 p99 µs"),
        [
            (
                r["name"],
                r["fit_seconds"],
                r["train_seconds"],
                f"{r['parameters']:,}",
                r["onnx_kib"],
                r["b1"]["p50_us"],
                r["b1"]["p99_us"],
                r["b64"]["p50_us"],
                r["b64"]["p99_us"],
            )
            for r in rows
        ],
    )
    path = write_json(
        "bench_classical",
        {
            "sweep": args.sweep,
            "symbol": SYMBOL,
            "data": {"seq_len": data_cfg.seq_len, "feature_set": data_cfg.feature_set, "task": data_cfg.task},
            "rows": rows,
            "busy": busy,
            "machine": machine_info(),
            "versions": versions(["lightgbm", "scikit-learn", "skl2onnx", "onnxmltools", "onnxruntime", "jax"]),
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
