"""Training at scale across processes: 1 vs 4 (forced host) devices, and SIGKILL mid-run then resume.

Each scenario runs a small script in a fresh interpreter: the device count must be fixed (XLA_FLAGS)
before jax is imported, and a crash is only real if the process dies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

DATA = """
import json, os, sys, time
import numpy as np
import jax
from flax import nnx
from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler
from cse_models.models import build_model
from cse_models.models.lstm import LSTMConfig
from cse_models.training.config import budget
from cse_models.training.loop import fit

klines, _ = clean_klines(SampleSource().fetch("BTCUSDT", "1h", None, None), "1h")
features = compute_features(klines.tail(700), "mur9")
data_cfg = DataConfig.seed(seq_len=12)
datasets = build_datasets(features, fit_feature_scaler(features, data_cfg), data_cfg)
train, val = datasets["train"], datasets["val"]

def params(model):
    return [np.asarray(leaf) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))]
"""

DEVICES = """
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
{data}
from cse_models.errors import ConfigError

assert jax.device_count() == 4
cfg = budget("demo", max_epochs=2, batch_size=32, jitter_std=0.01, scaling_std=0.05)
runs = {{}}
for devices in (1, 4):
    model = build_model("lstm_regressor", LSTMConfig(hidden=16), rngs=nnx.Rngs(0))  # dropout 0.2 on
    result = fit(model, train, val, data_cfg, cfg, devices=devices)
    runs[devices] = {{
        "train": [e.train_loss for e in result.history],
        "val": [e.val_loss for e in result.history],
        "params": [p.tolist() for p in params(model)],
        "shards": len(jax.tree.leaves(nnx.state(model, nnx.Param))[0].sharding.device_set),
    }}
try:
    fit(build_model("lstm_regressor", LSTMConfig(hidden=8), rngs=nnx.Rngs(0)), train, val, data_cfg,
        budget("tiny", batch_size=30), devices=4)
    runs["error"] = None
except ConfigError as exc:
    runs["error"] = str(exc)
print(json.dumps(runs))
"""

POOLED = """
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import json
import numpy as np
import jax
from flax import nnx
from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.pooled import pooled_series
from cse_models.datasets.segments import compute_features
from cse_models.models import build_model
from cse_models.models.lstm import LSTMConfig
from cse_models.training.config import budget
from cse_models.training.loop import fit

data_cfg = DataConfig(seq_len=12)
features = {{}}
for symbol in ("LTCUSDT", "DOTUSDT"):
    klines, _ = clean_klines(SampleSource().fetch(symbol, "1h", None, None), "1h")
    features[symbol] = compute_features(klines.tail(600), data_cfg.feature_set)
rows = {{s: {{"train": slice(0, 300), "val": slice(312, 420)}} for s in features}}
data = pooled_series(features, rows, data_cfg)
runs = {{}}
for devices in (1, 4):
    model = build_model("lstm_regressor", LSTMConfig(n_features=16, hidden=16, n_outputs=5), rngs=nnx.Rngs(0))
    result = fit(model, data.train, data.val, data_cfg, budget("demo", max_epochs=2, batch_size=32), devices=devices)
    runs[devices] = [e.train_loss for e in result.history] + [e.val_loss for e in result.history]
print(json.dumps(runs))
"""

RESUMABLE = """
{data}
from cse_models.training.checkpoint import TrainStateCheckpoints

state_dir, out, slow = sys.argv[1], sys.argv[2], sys.argv[3] == "slow"
store = TrainStateCheckpoints(state_dir)
print("starting at step", store.latest_step() or 0, flush=True)
store.close()
cfg = budget("demo", max_epochs=3, batch_size=32, checkpoint_every_steps=3, jitter_std=0.01, lr_schedule="cosine")
model = build_model("lstm_regressor", LSTMConfig(hidden=8), rngs=nnx.Rngs(0))
result = fit(model, train, val, data_cfg, cfg, state_dir=state_dir,
             on_epoch=(lambda entry: time.sleep(1.0)) if slow else None)
np.savez(out, *params(model))
print(json.dumps({{"train": [e.train_loss for e in result.history], "best": result.best_epoch}}), flush=True)
"""


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body.format(data=DATA)))
    return path


def _env(cache: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    if cache is not None:  # later processes reuse the first one's compiled step (same executable, same numbers)
        env |= {"JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    return env


def test_one_and_four_devices_give_the_same_loss_curve_and_reject_an_indivisible_batch(tmp_path):
    script = _script(tmp_path, "devices.py", DEVICES)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    one, four = runs["1"], runs["4"]
    assert (one["shards"], four["shards"]) == (1, 4)
    np.testing.assert_allclose(one["train"], four["train"], rtol=1e-5)
    np.testing.assert_allclose(one["val"], four["val"], rtol=1e-5)
    for a, b in zip(one["params"], four["params"], strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    assert one["train"][-1] < one["train"][0]
    assert "30" in runs["error"] and "4 devices" in runs["error"]


def _checkpoint_steps(state_dir: Path) -> list[int]:
    if not state_dir.exists():
        return []
    return sorted(int(p.name) for p in state_dir.iterdir() if p.is_dir() and p.name.isdigit())


def test_a_run_killed_mid_training_resumes_to_the_same_parameters(tmp_path):
    script = _script(tmp_path, "resumable.py", RESUMABLE)
    command = [sys.executable, str(script)]
    killed_dir, clean_dir, env = tmp_path / "killed", tmp_path / "clean", _env(tmp_path / "jax-cache")
    victim = subprocess.Popen(
        [*command, str(killed_dir), str(tmp_path / "killed.npz"), "slow"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 90
        while not _checkpoint_steps(killed_dir) and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert victim.poll() is None, "the run ended before its first checkpoint"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed.npz").exists()

    clean = subprocess.Popen(
        [*command, str(clean_dir), str(tmp_path / "clean.npz"), "fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    resumed = subprocess.run(
        [*command, str(killed_dir), str(tmp_path / "killed.npz"), "fast"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    clean_out, clean_err = clean.communicate(timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert clean.returncode == 0, clean_err[-3000:]
    started_at = int(resumed.stdout.split("starting at step", 1)[1].split()[0])
    total_steps = max(_checkpoint_steps(clean_dir))
    assert 0 < started_at < total_steps, (started_at, total_steps)
    assert json.loads(resumed.stdout.strip().splitlines()[-1]) == json.loads(clean_out.strip().splitlines()[-1])
    killed, uninterrupted = np.load(tmp_path / "killed.npz"), np.load(tmp_path / "clean.npz")
    for key in uninterrupted.files:
        np.testing.assert_array_equal(killed[key], uninterrupted[key])


def test_a_global_member_trains_on_the_pooled_panel_data_parallel_with_the_same_losses(tmp_path):
    """The pooled segment (two symbols, weighted windows, none across them) on 1 and on 4 devices."""
    script = tmp_path / "pooled.py"
    script.write_text(textwrap.dedent(POOLED.format()))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(runs["1"], runs["4"], rtol=1e-5)
    assert all(np.isfinite(runs["1"]))
