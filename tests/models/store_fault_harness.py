"""The harness of the store fault tests (local directory and S3): a publisher subprocess killed with
SIGKILL at a chosen moment, the test manifest and files it publishes, and the store's invariants."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from cse_models.errors import StoreError
from cse_models.store import Manifest, ModelStore, TensorSpec

SYMBOL, INTERVAL = "BTCUSDT", "1h"
REPO = Path(__file__).resolve().parents[2]


def manifest_for(version: str) -> Manifest:
    return Manifest(
        symbol=SYMBOL,
        interval=INTERVAL,
        version=version,
        created_at="2030-01-01T00:00:00+00:00",
        task="regression",
        feature_set="mur9",
        feature_names=["close"],
        seq_len=24,
        horizon=1,
        warmup=0,
        inputs=[TensorSpec("features", "float32", ["batch", 24, 1])],
        outputs=[TensorSpec("close", "float32", ["batch", 1])],
    )


def published_files(directory: Path, rng: random.Random) -> dict[str, Path]:
    """A model of a few hundred KB spread over many files, so kills land inside copies and deletes."""
    sizes = {"model.onnx": 192_000, "scaler.json": 2_000} | {f"members/m{i:02d}.onnx": 8_000 for i in range(24)}
    files = {}
    for rel, size in sizes.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        files[rel] = path
    return files


def violations(store: ModelStore, pinned: str) -> list[str]:
    """Every way the store breaks its contract now; empty when it holds."""
    found = []
    for version in store.versions(SYMBOL, INTERVAL):
        try:
            store.verified(SYMBOL, INTERVAL, version)
        except StoreError as exc:
            found.append(f"listed version {version} is partial: {exc}")
    try:
        latest = store.latest(SYMBOL, INTERVAL)
        if latest is None:
            found.append("LATEST is missing")
        else:
            store.verified(SYMBOL, INTERVAL, latest)
    except StoreError as exc:
        found.append(f"LATEST is not complete: {exc}")
    try:
        if store.pinned(SYMBOL, INTERVAL) != pinned:
            found.append(f"PINNED changed from {pinned}")
        store.verified(SYMBOL, INTERVAL, pinned)
    except StoreError as exc:
        found.append(f"the pinned version {pinned} is damaged or gone: {exc}")
    return found


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.strip())
    lines.put(None)


def run_and_kill(publisher: Path, args: list[str], target: str, skip: int, delay_s: float) -> str:
    """Start `publisher` with `args`, wait for the (skip+1)-th `target` marker it prints, sleep `delay_s`,
    SIGKILL it → the last marker it printed, i.e. the phase it died in."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(publisher), *args], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    last, seen = "", 0
    try:
        deadline = time.monotonic() + 30
        while seen <= skip:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, f"the publisher exited on its own (rc={proc.wait()}) after {last!r}"
            last = line
            seen += line == target
        time.sleep(delay_s)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(timeout=10)
    while (line := lines.get_nowait()) is not None:
        last = line
    return last
