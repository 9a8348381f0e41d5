"""Training throughput: cse's LSTMRegressor (the real `train_step` that `fit` runs) vs the seed's PyTorch LSTM.

Protocol (the seed's, `../shared/bench/seed_baseline/train_torch.py`): batch 64, 5 warm-up steps, then
5 windows of 30 timed steps; the median window gives samples/s. Model: 2 LSTM layers × 128, 9 features,
dropout 0.2, Adam 1e-4, MSE. cse trains on the bundled real sample (BTCUSDT 1h, mur9 features, minmax
scaler fit on the train segment), windows gathered on device inside the jitted step exactly as in `fit`;
the seed trains on its synthetic GBM klines with pre-collated batches ("model" mode).

Runs interleave: for each seq_len, cse then the seed (one `train_torch.py` subprocess per seq_len),
repeated `--rounds` times. Both sides are limited to `--threads` CPUs: torch via `--threads`; XLA has no
thread-count switch and uses every core it can see, so when the machine has more usable CPUs than
`--threads` this process (and the seed subprocess it starts) is pinned to the first `--threads` of them.

    .venv/bin/python benchmarks/bench_train.py [--seq-lens 24 64] [--rounds 1] [--setup-seed] [--no-seed]

Goal stated by the issue: cse ≥ 1.5× the seed's samples/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SEED_DIR, machine_info, print_table, versions, warn_if_busy, write_json

SEED_VENV = Path("/tmp/benchvenv")
SEED_PY = SEED_VENV / "bin" / "python"
BATCH = 64
GOAL = 1.5
TRANSFORMER_NAMES = ("financial_transformer", "transformer")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-lens", type=int, nargs="+", default=[24, 64])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch threads; CPUs this process is pinned to")
    p.add_argument("--rounds", type=int, default=1, help="interleaved cse/seed rounds per seq_len")
    p.add_argument("--symbol", default="BTCUSDT", choices=["BTCUSDT", "ETHUSDT"])
    p.add_argument("--setup-seed", action="store_true", help="run the seed's setup.sh if /tmp/benchvenv is missing")
    p.add_argument("--no-seed", action="store_true", help="measure cse only")
    p.add_argument("--json-name", default="bench_train")
    return p.parse_args()


def pin_cpus(threads: int) -> dict:
    """Restrict this process (and its children) to `threads` CPUs when more are usable — before jax loads."""
    if not hasattr(os, "sched_getaffinity"):
        return {"pinned": False, "reason": "no sched_setaffinity on this platform"}
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) <= threads:
        return {"pinned": False, "cpus": usable, "reason": f"{len(usable)} usable CPUs ≤ --threads {threads}"}
    chosen = usable[:threads]
    os.sched_setaffinity(0, chosen)
    return {"pinned": True, "cpus": chosen, "usable_before": len(usable)}


# --------------------------------------------------------------------------------------------- seed side


def seed_python_ok() -> bool:
    if not SEED_PY.exists():
        return False
    probe = "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)"
    return subprocess.run([str(SEED_PY), "-c", probe], capture_output=True).returncode == 0


def ensure_seed_venv(explicit: bool) -> None:
    if seed_python_ok():
        return
    if not explicit:
        print(f"note: {SEED_VENV} is missing or has no torch 2.13.0; running the seed's setup.sh (minutes)")
    rc = subprocess.run(["bash", str(SEED_DIR / "setup.sh")]).returncode
    if rc == 0 and seed_python_ok():
        return
    # setup.sh also installs wrk (apt), which training does not need: fall back to the Python part only.
    print(f"note: setup.sh failed (rc {rc}); installing torch==2.13.0 + requirements.txt into {SEED_VENV} directly")
    if not SEED_PY.exists():
        subprocess.run([sys.executable if sys.version_info[:2] == (3, 11) else "python3", "-m", "venv", str(SEED_VENV)])
    pip = [str(SEED_VENV / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "-r", str(SEED_DIR / "requirements.txt")], check=True)
    if not seed_python_ok():
        raise SystemExit(f"could not set up {SEED_VENV}")


def run_seed(seq_len: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "train.json"
        cmd = [
            str(SEED_PY),
            str(SEED_DIR / "train_torch.py"),
            "--seq-lens",
            str(seq_len),
            "--warmup",
            str(args.warmup),
            "--steps",
            str(args.steps),
            "--repeats",
            str(args.repeats),
            "--threads",
            str(args.threads),
            "--json",
            str(out),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"seed train_torch.py failed (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
        data = json.loads(out.read_text())
    r = data["results"][str(seq_len)]
    return {
        "torch": data["torch"],
        "samples_per_s": r["model"]["samples_per_s"],
        "ms_per_step": r["model"]["ms_per_step"],
        "windows_s": r["model"]["windows_s"],
        "e2e_samples_per_s": r.get("e2e", {}).get("samples_per_s"),
        "e2e_windows_s": r.get("e2e", {}).get("windows_s"),
        "train_sequences": r["train_sequences"],
    }


# ---------------------------------------------------------------------------------------------- cse side


def load_sample(symbol: str):
    from cse_models.data.clean import clean_klines
    from cse_models.data.file_sources import SAMPLE_INTERVAL, SampleSource
    from cse_models.features.dataset import compute_features

    klines, _ = clean_klines(SampleSource().fetch(symbol, SAMPLE_INTERVAL, None, None), SAMPLE_INTERVAL)
    return compute_features(klines, "mur9")


def bench_cse(model_name: str, features, seq_len: int, args: argparse.Namespace, **cfg_overrides) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import nnx

    from cse_models.config import DataConfig
    from cse_models.features.dataset import build_datasets, fit_feature_scaler, window_count
    from cse_models.models import build_model
    from cse_models.training.config import TrainingConfig
    from cse_models.training.loop import train_step
    from cse_models.training.run import model_config_for

    data_cfg = DataConfig(seq_len=seq_len)
    train_cfg = TrainingConfig()  # lr 1e-4, batch 64: the seed's
    train = build_datasets(features, fit_feature_scaler(features, data_cfg), data_cfg)["train"]
    count = window_count(train, data_cfg)
    order = np.random.default_rng(train_cfg.seed).permutation(count)
    batches = [order[i : i + BATCH] for i in range(0, count - BATCH + 1, BATCH)]  # full batches, cycled

    # the seed's LSTM at its real size; other architectures at their small `demo()` preset
    preset = "default" if model_name == "lstm_regressor" else "demo"
    cfg = model_config_for(model_name, data_cfg, train.x.shape[1], preset, **cfg_overrides)
    model = build_model(model_name, cfg, rngs=nnx.Rngs(0))
    model.train()
    optimizer = nnx.Optimizer(model, optax.adam(train_cfg.learning_rate), wrt=nnx.Param)  # as `fit` builds it
    x_all, y_all = jnp.asarray(train.x), jnp.asarray(train.y)
    k = 0

    def step():
        nonlocal k
        starts = jnp.asarray(batches[k % len(batches)])  # `fit` converts each batch's starts the same way
        k += 1
        return train_step(model, optimizer, x_all, y_all, starts, seq_len, data_cfg.task)

    t0 = time.perf_counter()
    jax.block_until_ready(step())
    first_step_s = time.perf_counter() - t0  # includes tracing + XLA compilation
    for _ in range(args.warmup - 1):
        step()
    jax.block_until_ready(nnx.state(model))
    windows, losses = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        jax.block_until_ready((loss, nnx.state(model)))
        windows.append(time.perf_counter() - t0)
        losses.append(float(loss))
    med = statistics.median(windows)
    return {
        "samples_per_s": args.steps * BATCH / med,
        "ms_per_step": med / args.steps * 1e3,
        "windows_s": windows,
        "last_losses": losses,
        "first_step_s_incl_compile": first_step_s,
        "train_windows": count,
        "batches_cycled": len(batches),
    }


def transformer_name() -> str | None:
    from cse_models.models import MODELS

    return next((n for n in TRANSFORMER_NAMES if n in MODELS), None)


# -------------------------------------------------------------------------------------------------- main


def main() -> None:
    args = parse_args()
    pinning = pin_cpus(args.threads)
    if not args.no_seed:
        ensure_seed_venv(args.setup_seed)

    load_at_start = warn_if_busy()
    import jax

    features = load_sample(args.symbol)
    notes = [
        "XLA on CPU has no intra-op thread-count switch; it uses every CPU the process may run on. "
        + (
            f"This process and the seed subprocess were pinned to CPUs {pinning['cpus']}."
            if pinning["pinned"]
            else f"Not pinned: {pinning['reason']}, so both sides see the same {args.threads} CPUs."
        ),
        "cse trains on the bundled real sample; the seed on its synthetic GBM klines (same shapes, same model).",
        "seed figure = train_torch.py 'model' mode (pre-collated batches); cse = the jitted train_step of fit, "
        "windows gathered on device.",
    ]
    tname = transformer_name()
    if tname is None:
        notes.append("FinancialTransformer is not in the model registry yet: skipped.")

    print(
        f"# cse bench_train: jax {jax.__version__} on {jax.devices()[0].platform}, batch {BATCH}, "
        f"warmup {args.warmup}, {args.repeats} windows × {args.steps} steps (median window), threads {args.threads}"
    )
    rows = {s: {"cse": [], "seed": [], "transformer": []} for s in args.seq_lens}

    def show(rnd: int, seq_len: int, label: str, r: dict) -> None:
        print(
            f"round {rnd} seq {seq_len:>3} {label:<5} {r['samples_per_s']:8.0f} samples/s",
            f"{r['ms_per_step']:6.1f} ms/step",
        )

    for rnd in range(args.rounds):
        for seq_len in args.seq_lens:
            rows[seq_len]["cse"].append(r := bench_cse("lstm_regressor", features, seq_len, args))
            show(rnd, seq_len, "cse", r)
            if not args.no_seed:
                rows[seq_len]["seed"].append(r := run_seed(seq_len, args))
                show(rnd, seq_len, "seed", r)
            if tname is not None:
                rows[seq_len]["transformer"].append(r := bench_cse(tname, features, seq_len, args))
                show(rnd, seq_len, tname, r)

    def med(runs: list[dict]) -> float | None:
        return statistics.median(r["samples_per_s"] for r in runs) if runs else None

    table, summary = [], {}
    for seq_len, runs in rows.items():
        cse, seed, tr = med(runs["cse"]), med(runs["seed"]), med(runs["transformer"])
        ratio = cse / seed if seed else None
        summary[str(seq_len)] = {
            "cse_samples_per_s": cse,
            "seed_samples_per_s": seed,
            "ratio": ratio,
            "meets_goal": None if ratio is None else ratio >= GOAL,
            f"{tname}_samples_per_s" if tname else "transformer_samples_per_s": tr,
        }
        row = [seq_len, f"{cse:.0f}", "-" if seed is None else f"{seed:.0f}", "-" if ratio is None else f"{ratio:.2f}×"]
        if tname:
            row.append(f"{tr:.0f}")
        table.append(row)
    print()
    headers = ["seq_len", "cse samples/s", "seed samples/s", "cse/seed"] + ([f"{tname} samples/s"] if tname else [])
    print_table(headers, table)
    if not args.no_seed:
        met = all(v["meets_goal"] for v in summary.values())
        print(f"goal (issue): cse ≥ {GOAL}× seed samples/s: {'met' if met else 'not met'}")
    for note in notes:
        print(f"note: {note}")

    seed_torch = next((r["torch"] for runs in rows.values() for r in runs["seed"]), None)
    path = write_json(
        args.json_name,
        {
            "benchmark": "bench_train",
            "machine": machine_info(),
            "cpu_load_at_start": load_at_start,
            "cpu_pinning": pinning,
            "versions": {
                **versions(["jax", "jaxlib", "flax", "optax", "numpy", "polars"]),
                "torch_seed": seed_torch,
            },
            "jax_devices": [str(d) for d in jax.devices()],
            "protocol": {
                "batch": BATCH,
                "warmup": args.warmup,
                "steps": args.steps,
                "repeats": args.repeats,
                "threads": args.threads,
                "rounds": args.rounds,
                "model": "lstm_regressor h128×2, 9 features, dropout 0.2, Adam 1e-4, MSE",
                "cse_data": f"bundled sample {args.symbol} 1h, mur9, minmax on train",
                "seed_command": f"{SEED_PY} {SEED_DIR / 'train_torch.py'} --seq-lens <s> --warmup {args.warmup} "
                f"--steps {args.steps} --repeats {args.repeats} --threads {args.threads} --json <tmp>",
            },
            "goal_ratio": GOAL,
            "summary": summary,
            "raw": {str(s): r for s, r in rows.items()},
            "notes": notes,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
