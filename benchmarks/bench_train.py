"""Training throughput: cse's recurrent models (the step `fit` runs) beside the seed's PyTorch LSTM, same run.

Protocol (the seed's, `../shared/bench/seed_baseline/train_torch.py`): batch 64, 5 warm-up steps, then
5 windows of 30 timed steps; the median window gives samples/s. Seed model: 2 LSTM layers × 128, 9 features,
dropout 0.2, Adam 1e-4, MSE, on its synthetic GBM klines with pre-collated batches ("model" mode). The seed has
no GRU; its protocol is run on `nn.GRU` of the same size (`TORCH_GRU`, same venv, same threads) so the GRU has
a PyTorch yardstick too.

cse side, per seq_len, on the bundled real sample (BTCUSDT 1h, mur9, min-max on train), windows gathered on
device inside the step exactly as in `fit` (`SplitTrainStep`, allocator tuned by `retain_freed_buffers`):
- `lstm_regressor` (the seed's model) and `financial_gru` at the same size (h128 × 2, dropout 0.2),
  each in fp32 and with the recurrent GEMM in bf16 (fp32 accumulation, fp32 master weights and activations:
  `rnn_ops.recurrent_matmul_dtype`);
- the zoo's other families at their `demo()` preset, samples/s only: `financial_cnn1d`, `financial_transformer`.

GEMM efficiency: a large fp32 (and bf16) GEMM measured in the same process gives the peak; for each recurrent
case the report gives (a) the step's GEMM FLOPs (input projections, recurrent GEMMs forward and backward, the
weight-gradient GEMMs) over the step time, and (b) the recurrent GEMM chain alone (T dependent `[B,H]@[H,gH]`
products, forward and backward shapes, in a `scan`) — each as a fraction of the peak.

Both sides are limited to `--threads` CPUs (torch via `--threads`; XLA uses every CPU it may run on, so on a
machine with more CPUs this process and its children are pinned to the first `--threads`).

    .venv/bin/python benchmarks/bench_train.py [--full] [--seq-lens 24] [--rounds 1] [--setup-seed] [--no-seed]

Default run (a few minutes on 2 cores, once the seed's venv exists): seq 24 only, 3 timed windows per case.
`--full` adds seq 64 (the issue's second goal point) and takes the seed's 5 windows: the sweep the README's
tables come from.

Goal (issue 16): LSTM and GRU ≥ 1.0× the PyTorch side at seq 24 and 64 in fp32; moonshot ≥ 1.5× and ≥ 75 % of
the GEMM peak in the recurrent step.
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
from _common import SEED_DIR, machine_info, parse_with_sweep, print_table, versions, warn_if_busy, write_json

SEED_VENV = Path("/tmp/benchvenv")
SEED_PY = SEED_VENV / "bin" / "python"
BATCH = 64
GOAL, MOONSHOT = 1.0, 1.5
HIDDEN, LAYERS = 128, 2
RNN_CASES = (("lstm", "lstm_regressor", {}), ("gru", "financial_gru", {"layers": LAYERS, "hidden": HIDDEN}))
OTHER_FAMILIES = ("financial_cnn1d", "financial_transformer")

TORCH_GRU = r"""
import json, sys, time, torch
from torch import nn
seq, warmup, steps, repeats, threads = map(int, sys.argv[1:6])
torch.set_num_threads(threads)
torch.manual_seed(0)
class GRURegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(batch_first=True, dropout=0.2, hidden_size=128, input_size=9, num_layers=2)
        self.regressor = nn.Linear(128, 1)
    def forward(self, x):
        _, hidden = self.gru(x)
        return self.regressor(hidden[-1])
model = GRURegressor(); model.train()
criterion, optimizer = nn.MSELoss(), torch.optim.Adam(model.parameters(), lr=1e-4)
batches = [(torch.randn(64, seq, 9), torch.randn(64)) for _ in range(8)]
def step(x, y):
    optimizer.zero_grad(); loss = criterion(model(x), y.unsqueeze(1)); loss.backward(); optimizer.step(); return loss
k = 0
for _ in range(warmup):
    step(*batches[k % 8]); k += 1
windows = []
for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps):
        step(*batches[k % 8]); k += 1
    windows.append(time.perf_counter() - t0)
med = sorted(windows)[len(windows) // 2]
print(json.dumps({"samples_per_s": steps * 64 / med, "ms_per_step": med / steps * 1e3, "windows_s": windows,
                  "torch": torch.__version__}))
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-lens", type=int, nargs="+", default=[24])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3, help="timed windows per case (the seed's protocol: 5)")
    p.add_argument("--threads", type=int, default=2, help="torch threads; CPUs this process is pinned to")
    p.add_argument("--rounds", type=int, default=1, help="interleaved cse/seed rounds per seq_len")
    p.add_argument("--symbol", default="BTCUSDT", choices=["BTCUSDT", "ETHUSDT"])
    p.add_argument("--setup-seed", action="store_true", help="run the seed's setup.sh if /tmp/benchvenv is missing")
    p.add_argument("--no-seed", action="store_true", help="measure cse only")
    p.add_argument("--no-others", action="store_true", help="skip the CNN / Transformer families")
    p.add_argument("--profile", action="store_true", help="also print where the step's time goes (jax.profiler)")
    p.add_argument("--json-name", default="bench_train")
    return parse_with_sweep(p, {"seq_lens": [24, 64], "repeats": 5}, "seq 64 beside seq 24, the seed's 5 windows")


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


def run_seed_lstm(seq_len: int, args: argparse.Namespace) -> dict:
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


def run_torch_gru(seq_len: int, args: argparse.Namespace) -> dict:
    cmd = [str(SEED_PY), "-c", TORCH_GRU, str(seq_len), str(args.warmup), str(args.steps), str(args.repeats)]
    proc = subprocess.run([*cmd, str(args.threads)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"torch GRU failed (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- cse side


def load_sample(symbol: str):
    from cse_models.data.clean import clean_klines
    from cse_models.data.file_sources import SAMPLE_INTERVAL, SampleSource
    from cse_models.datasets.segments import compute_features

    klines, _ = clean_klines(SampleSource().fetch(symbol, SAMPLE_INTERVAL, None, None), SAMPLE_INTERVAL)
    return compute_features(klines, "mur9")


def bench_cse(
    model_name: str, features, seq_len: int, args: argparse.Namespace, preset: str, bf16_recurrent: bool, **overrides
) -> dict:
    """samples/s of `fit`'s step (`SplitTrainStep`) for one architecture; model traced and compiled here."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import nnx

    from cse_models.config import DataConfig
    from cse_models.datasets.segments import build_datasets, fit_feature_scaler, window_count
    from cse_models.models import build_model, rnn_ops
    from cse_models.training.allocator import retain_freed_buffers
    from cse_models.training.config import TrainingConfig
    from cse_models.training.run import model_config_for
    from cse_models.training.step import SplitTrainStep, StepOptions

    retain_freed_buffers()  # as `fit` does
    data_cfg = DataConfig.seed(seq_len=seq_len)
    train_cfg = TrainingConfig()  # lr 1e-4, batch 64: the seed's
    train = build_datasets(features, fit_feature_scaler(features, data_cfg), data_cfg)["train"]
    count = window_count(train, data_cfg)
    order = np.random.default_rng(train_cfg.seed).permutation(count)
    batches = [order[i : i + BATCH] for i in range(0, count - BATCH + 1, BATCH)]  # full batches, cycled

    cfg = model_config_for(model_name, data_cfg, train.x.shape[1], preset, **overrides)
    model = build_model(model_name, cfg, rngs=nnx.Rngs(0))
    model.train()
    optimizer = nnx.Optimizer(model, optax.adam(train_cfg.learning_rate), wrt=nnx.Param)  # as `fit` builds it
    step_fn = SplitTrainStep(model, optimizer)
    x_all, y_all = jnp.asarray(train.x), jnp.asarray(train.y)
    weights = jnp.ones(BATCH, jnp.float32)
    options = StepOptions()  # fp32 master weights and activations
    k = 0

    def step():
        nonlocal k
        starts = jnp.asarray(batches[k % len(batches)])  # `fit` converts each batch's starts the same way
        k += 1
        return step_fn(x_all, y_all, starts, seq_len, data_cfg.task, weights, k, train_cfg.seed, options)

    jax.clear_caches()  # the recurrent GEMM's dtype is a trace-time setting: trace this variant afresh
    t0 = time.perf_counter()
    with rnn_ops.recurrent_matmul_dtype(jnp.bfloat16 if bf16_recurrent else None):
        jax.block_until_ready(step())
    first_step_s = time.perf_counter() - t0  # includes tracing + XLA compilation
    for _ in range(args.warmup - 1):
        step()
    jax.block_until_ready(step_fn.state)
    windows, losses = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        jax.block_until_ready((loss, step_fn.state))
        windows.append(time.perf_counter() - t0)
        losses.append(float(loss))
    med = statistics.median(windows)
    recurrent = model_name in {name for _, name, _ in RNN_CASES}
    profile = (
        profile_step(step, step_fn, x_all, y_all, seq_len, med / args.steps) if args.profile and recurrent else None
    )
    return {
        "profile_ms_per_step": profile,
        "samples_per_s": args.steps * BATCH / med,
        "ms_per_step": med / args.steps * 1e3,
        "windows_s": windows,
        "last_losses": losses,
        "first_step_s_incl_compile": first_step_s,
        "train_windows": count,
        "n_features": int(train.x.shape[1]),
        "config": {k: v for k, v in vars(cfg).items() if isinstance(v, (int, float, bool, str))},
    }


PROFILE_CATEGORIES = (
    ("recurrent GEMM, forward loop", lambda op, dot: "/while/body" in op and "transpose(" not in op and dot),
    ("forward loop elementwise (gates, stores)", lambda op, dot: "/while/body" in op and "transpose(" not in op),
    ("recurrent GEMM, backward loop", lambda op, dot: "/while/body" in op and dot),
    ("backward loop elementwise", lambda op, dot: "/while/body" in op),
    ("dropout masks and RNG keys", lambda op, dot: any(k in op for k in ("threefry", "_bernoulli", "_uniform"))),
    ("input projections and weight-gradient GEMMs", lambda op, dot: dot),
    ("window gather", lambda op, dot: "gather" in op),
    ("Adam update", lambda op, dot: "jvp(" not in op and "transpose(" not in op and op.count("/") == 1),
    ("other kernels (coefficients, loss, head, copies)", lambda op, dot: True),
)


def profile_step(step, step_fn, x_all, y_all, seq_len: int, step_seconds: float, calls: int = 10) -> dict[str, float]:
    """ms per step by category: XLA's per-kernel trace (median duration × count), each kernel classified by
    the jaxpr path XLA keeps in its metadata; what the kernels do not cover is dispatch and waiting."""
    import collections
    import gzip
    import re

    import jax

    from cse_models.training.step import StepOptions, _train_step_on_state

    starts = jax.numpy.arange(BATCH)
    args = (step_fn.graphdef, step_fn.state, x_all, y_all, starts, seq_len, "regression", jax.numpy.ones(BATCH), 0, 0)
    hlo = _train_step_on_state.lower(*args, StepOptions()).compile().as_text()
    op_names = dict(re.findall(r"^\s*(?:ROOT )?%?([\w.-]+) = .*?op_name=\"([^\"]*)\"", hlo, re.M))
    with tempfile.TemporaryDirectory() as tmp:
        jax.block_until_ready(step())
        with jax.profiler.trace(tmp):
            for _ in range(calls):
                jax.block_until_ready(step())
        trace = next(Path(tmp).rglob("*.trace.json.gz"))
        with gzip.open(trace) as fh:
            events = json.load(fh)["traceEvents"]
    durations = collections.defaultdict(list)
    for e in events:
        hlo_op = (e.get("args") or {}).get("hlo_op")
        if e.get("ph") == "X" and hlo_op and not hlo_op.startswith("while"):
            durations[hlo_op].append(e["dur"])
    out = {name: 0.0 for name, _ in PROFILE_CATEGORIES}
    for hlo_op, durs in durations.items():
        op = op_names.get(hlo_op, "")
        dot = hlo_op.startswith(("ynn", "dot", "onednn", "xnn")) or "dot_general" in op.rsplit("/", 1)[-1]
        name = next(n for n, rule in PROFILE_CATEGORIES if rule(op, dot))
        out[name] += statistics.median(durs) * len(durs) / calls / 1e3
    out["dispatch, Python and waits (step time − kernels)"] = max(0.0, step_seconds * 1e3 - sum(out.values()))
    return out


def step_gemm_flops(kind: str, seq_len: int, features: int) -> dict[str, float]:
    """GEMM FLOPs of one train step of a `LAYERS` × `HIDDEN` recurrent stack (forward + backward), batch BATCH.

    Per layer with input width F and gate width G·H: input projection 2·T·B·F·GH, recurrent GEMM forward and
    backward 2 × 2·T·B·H·GH, weight gradients dW_i 2·T·B·F·GH and dW_h 2·T·B·H·GH, input gradient (not for the
    first layer, whose input is data) 2·T·B·F·GH. The head and the elementwise work are left out."""
    gates = 4 if kind == "lstm" else 3
    rows, width = seq_len * BATCH, gates * HIDDEN
    recurrent = total = 0.0
    for layer in range(LAYERS):
        fan_in = features if layer == 0 else HIDDEN
        rec = 2 * (2 * rows * HIDDEN * width)
        recurrent += rec
        total += rec + 2 * rows * fan_in * width * (2 if layer == 0 else 3) + 2 * rows * HIDDEN * width
    return {"recurrent": recurrent, "total": total}


def gemm_peak_gflops(dtype_name: str, size: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of one large [size, size] @ [size, size] GEMM (fp32, or bf16 with fp32 accumulation)."""
    import jax
    import jax.numpy as jnp

    dtype = jnp.float32 if dtype_name == "fp32" else jnp.bfloat16
    a = jax.random.normal(jax.random.key(0), (size, size)).astype(dtype)
    b = jax.random.normal(jax.random.key(1), (size, size)).astype(dtype)
    f = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
    jax.block_until_ready(f(a, b))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, b))
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def recurrent_chain_gflops(kind: str, seq_len: int, bf16: bool, reps: int = 20) -> float:
    """GFLOP/s of the recurrent GEMMs alone: T dependent [B,H]@[H,GH] (forward) and [B,GH]@[GH,H] (backward)
    products in one `scan`, the shapes and dependency the layers have, without their elementwise work."""
    import jax
    import jax.numpy as jnp

    gates = 4 if kind == "lstm" else 3
    w = jax.random.normal(jax.random.key(0), (HIDDEN, gates * HIDDEN)) * 0.05
    dtype = jnp.bfloat16 if bf16 else jnp.float32

    @jax.jit
    def chain(w):
        wf, wb = w.astype(dtype), w.T.astype(dtype)

        def step(h, _):
            z = jnp.dot(h.astype(dtype), wf, preferred_element_type=jnp.float32)
            return jnp.dot(z.astype(dtype), wb, preferred_element_type=jnp.float32), None

        return jax.lax.scan(step, jnp.ones((BATCH, HIDDEN)), None, length=seq_len)[0]

    jax.block_until_ready(chain(w))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(chain(w))
        best = min(best, time.perf_counter() - t0)
    return 2 * (2 * BATCH * HIDDEN * gates * HIDDEN) * seq_len / best / 1e9


# -------------------------------------------------------------------------------------------------- main


def main() -> None:
    args = parse_args()
    pinning = pin_cpus(args.threads)
    if not args.no_seed:
        ensure_seed_venv(args.setup_seed)

    load_at_start = warn_if_busy()
    import jax

    from cse_models.models import MODELS

    features = load_sample(args.symbol)
    others = [] if args.no_others else [n for n in OTHER_FAMILIES if n in MODELS]
    notes = [
        "XLA on CPU has no intra-op thread-count switch; it uses every CPU the process may run on. "
        + (
            f"This process and the torch subprocesses were pinned to CPUs {pinning['cpus']}."
            if pinning["pinned"]
            else f"Not pinned: {pinning['reason']}, so both sides see the same {args.threads} CPUs."
        ),
        "cse trains on the bundled real sample; the seed on its synthetic GBM klines (same shapes, same model); "
        "the torch GRU on random tensors of the same shapes (the seed protocol, nn.GRU instead of nn.LSTM).",
        "seed figure = train_torch.py 'model' mode (pre-collated batches); cse = fit's step (SplitTrainStep), "
        "windows gathered on device.",
        f"other families at their demo() preset: {', '.join(others) or 'skipped'}.",
    ]
    print(
        f"# cse bench_train: jax {jax.__version__} on {jax.devices()[0].platform}, batch {BATCH}, "
        f"warmup {args.warmup}, {args.repeats} windows × {args.steps} steps (median window), threads {args.threads}"
    )
    peaks = {d: gemm_peak_gflops(d) for d in ("fp32", "bf16")}
    print(f"large-GEMM peak (2048³): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    loads = []
    raw: dict[str, dict[str, list[dict]]] = {str(s): {} for s in args.seq_lens}

    def record(seq_len: int, label: str, r: dict) -> None:
        r["load_1min"] = os.getloadavg()[0]
        raw[str(seq_len)].setdefault(label, []).append(r)
        loads.append(r["load_1min"])
        print(
            f"seq {seq_len:>3} {label:<28} {r['samples_per_s']:8.0f} samples/s {r['ms_per_step']:7.1f} ms/step"
            f"  (load {r['load_1min']:.2f})"
        )

    for rnd in range(args.rounds):
        print(f"-- round {rnd}")
        for seq_len in args.seq_lens:
            for kind, name, overrides in RNN_CASES:
                for bf16 in (False, True):
                    label = f"cse {kind} {'bf16-recurrent' if bf16 else 'fp32'}"
                    record(seq_len, label, bench_cse(name, features, seq_len, args, "default", bf16, **overrides))
                if not args.no_seed:
                    torch_side = run_seed_lstm if kind == "lstm" else run_torch_gru
                    record(
                        seq_len,
                        f"torch {kind} ({'seed' if kind == 'lstm' else 'seed protocol'})",
                        torch_side(seq_len, args),
                    )
            for name in others:
                record(seq_len, f"cse {name} (demo)", bench_cse(name, features, seq_len, args, "demo", False))

    def med(seq_len: int, label: str) -> float | None:
        runs = raw[str(seq_len)].get(label, [])
        return statistics.median(r["samples_per_s"] for r in runs) if runs else None

    table, summary = [], {}
    for seq_len in args.seq_lens:
        summary[str(seq_len)] = {}
        for kind, _, _ in RNN_CASES:
            torch_label = f"torch {kind} ({'seed' if kind == 'lstm' else 'seed protocol'})"
            base = med(seq_len, torch_label)
            n_features = raw[str(seq_len)][f"cse {kind} fp32"][0]["n_features"]
            flops = step_gemm_flops(kind, seq_len, n_features)
            for precision in ("fp32", "bf16-recurrent"):
                sps = med(seq_len, f"cse {kind} {precision}")
                ratio = sps / base if base else None
                peak = peaks["fp32" if precision == "fp32" else "bf16"]
                step_gflops = flops["total"] * sps / BATCH / 1e9
                chain = recurrent_chain_gflops(kind, seq_len, precision != "fp32")
                summary[str(seq_len)][f"{kind} {precision}"] = {
                    "cse_samples_per_s": sps,
                    "torch_samples_per_s": base,
                    "ratio": ratio,
                    "meets_goal": None if ratio is None else ratio >= GOAL,
                    "step_gemm_gflops": step_gflops,
                    "step_gemm_fraction_of_peak": step_gflops / peak,
                    "recurrent_chain_gflops": chain,
                    "recurrent_chain_fraction_of_peak": chain / peak,
                    "peak_gflops": peak,
                }
                table.append(
                    [
                        seq_len,
                        f"{kind} {precision}",
                        f"{sps:.0f}",
                        "-" if base is None else f"{base:.0f}",
                        "-" if ratio is None else f"{ratio:.2f}×",
                        f"{step_gflops:.0f} ({step_gflops / peak:.0%})",
                        f"{chain:.0f} ({chain / peak:.0%})",
                    ]
                )
        for name in others:
            sps = med(seq_len, f"cse {name} (demo)")
            summary[str(seq_len)][name] = {"cse_samples_per_s": sps}
            table.append([seq_len, f"{name} (demo)", f"{sps:.0f}", "-", "-", "-", "-"])
    print()
    headers = ["seq", "cse model", "cse samples/s", "torch samples/s", "cse/torch", "step GEMM GFLOP/s", "rec. chain"]
    print_table(headers, table)
    if args.profile:
        for seq_len in args.seq_lens:
            for label, runs in raw[str(seq_len)].items():
                if runs and runs[0].get("profile_ms_per_step"):
                    prof = runs[0]["profile_ms_per_step"]
                    total = sum(prof.values())
                    print(f"\nwhere the time goes: seq {seq_len} {label} ({total:.1f} ms/step)")
                    print_table(
                        ["part", "ms/step", "share"], [[k, f"{v:.2f}", f"{v / total:.0%}"] for k, v in prof.items()]
                    )
    print(f"peak: large fp32 GEMM {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s (same process)")
    if not args.no_seed:
        fp32 = [v for s in summary.values() for k, v in s.items() if k.endswith("fp32")]
        met = all(v["meets_goal"] for v in fp32)
        print(f"goal (issue 16): LSTM and GRU fp32 ≥ {GOAL}× PyTorch at every seq_len: {'met' if met else 'not met'}")
    print(f"load average (1 min) during the runs: {min(loads):.2f}–{max(loads):.2f}")
    for note in notes:
        print(f"note: {note}")

    seed_torch = next((r["torch"] for s in raw.values() for r in s.get("torch lstm (seed)", [])), None)
    path = write_json(
        args.json_name,
        {
            "benchmark": "bench_train",
            "sweep": args.sweep,
            "machine": machine_info(),
            "cpu_load_at_start": load_at_start,
            "load_1min_range": [min(loads), max(loads)],
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
                "models": "lstm_regressor h128×2 and financial_gru h128×2 (dropout 0.2, Adam 1e-4, MSE); "
                f"{', '.join(others)} at demo()",
                "cse_data": f"bundled sample {args.symbol} 1h, mur9, minmax on train",
                "seed_command": f"{SEED_PY} {SEED_DIR / 'train_torch.py'} --seq-lens <s> --warmup {args.warmup} "
                f"--steps {args.steps} --repeats {args.repeats} --threads {args.threads} --json <tmp>",
            },
            "gemm_peak_gflops": peaks,
            "goal_ratio": GOAL,
            "moonshot_ratio": MOONSHOT,
            "summary": summary,
            "raw": raw,
            "notes": notes,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
