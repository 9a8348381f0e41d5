"""The store under SIGKILL: a publisher killed at 20 random points, in publish and in prune.

After every kill the store must hold only complete versions (each listed version passes its sha256
check), LATEST must name a complete version and the pinned version must still be there. The publisher
is a separate process (store_publisher_proc.py, stdlib + cse_models.store only), killed with SIGKILL
so that no `finally` or `except` in the store gets to tidy up.

A positive control shows the invariant check catches what the old in-place `rmtree` prune left behind.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from cse_models.errors import StoreError
from cse_models.store import MANIFEST, PINNED, Manifest, ModelStore, TensorSpec, new_version

SYMBOL, INTERVAL = "BTCUSDT", "1h"
PUBLISHER = Path(__file__).with_name("store_publisher_proc.py")
REPO = Path(__file__).resolve().parents[2]
KILLS = 20
KEEP = 2
SLOW_UNLINK_S = "0.0005"  # widens prune (one unlink per file) to about publish's length; see the publisher
TEMP_PREFIXES = (".tmp-", ".trash-", f".{PINNED}.", ".LATEST.")


def _manifest(version: str) -> Manifest:
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


def _sources(directory: Path, rng: random.Random) -> dict[str, Path]:
    """A model of a few hundred KB spread over many files, so kills land inside copies and deletes."""
    sizes = {"model.onnx": 192_000, "scaler.json": 2_000} | {f"members/m{i:02d}.onnx": 8_000 for i in range(24)}
    files = {}
    for rel, size in sizes.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        files[rel] = path
    return files


def _violations(store: ModelStore, pinned: str) -> list[str]:
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


def _temp_entries(store: ModelStore) -> list[str]:
    series = store.series_dir(SYMBOL, INTERVAL)
    return sorted(p.name for p in series.iterdir() if p.name.startswith(TEMP_PREFIXES))


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.strip())
    lines.put(None)


def _run_and_kill(args: list[str], target: str, skip: int, delay_s: float) -> str:
    """Start the publisher, wait for the (skip+1)-th `target` marker, sleep `delay_s`, SIGKILL it;
    → the last marker it printed, i.e. the phase it died in."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), *args], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env
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


def test_the_invariant_check_catches_a_prune_killed_mid_rmtree(tmp_path):
    """Positive control: the state an in-place rmtree leaves when killed after deleting some files
    (here model.onnx, while manifest.json remains) is listed, and the check reports it."""
    store = ModelStore(tmp_path / "store")
    src = _sources(tmp_path / "src", random.Random(0))
    versions = [new_version(datetime(2030, 1, 1, 0, 0, i, tzinfo=UTC)) for i in range(3)]
    for version in versions:
        store.publish(_manifest(version), src, keep=10)
    store.pin(SYMBOL, INTERVAL, versions[1])
    assert _violations(store, versions[1]) == []
    half_deleted = store.version_dir(SYMBOL, INTERVAL, versions[0])
    (half_deleted / "model.onnx").unlink()
    assert (half_deleted / MANIFEST).is_file()
    assert any(f"listed version {versions[0]} is partial" in v for v in _violations(store, versions[1]))
    (store.version_dir(SYMBOL, INTERVAL, versions[1]) / "members" / "m00.onnx").unlink()
    assert any("the pinned version" in v for v in _violations(store, versions[1]))


def test_publisher_killed_at_20_random_points_leaves_the_store_consistent(tmp_path):
    rng = random.Random(20261214)
    root = tmp_path / "store"
    src = _sources(tmp_path / "src", rng)
    store = ModelStore(root)
    pinned = new_version(datetime(2029, 1, 1, tzinfo=UTC))
    store.publish(_manifest(pinned), src, keep=KEEP)
    (store.series_dir(SYMBOL, INTERVAL) / PINNED).write_text(pinned + "\n")

    phases: Counter[str] = Counter()
    partial_listed = 0
    for kill in range(KILLS):
        target = "prune" if kill % 2 else "publish"
        delay_s = rng.uniform(0, 0.02)
        args = [str(root), str(tmp_path / "src"), str(KEEP), str(kill * 100_000), SLOW_UNLINK_S]
        phases[_run_and_kill(args, target, skip=rng.randint(0, 2), delay_s=delay_s)] += 1
        problems = _violations(store, pinned)
        partial_listed += sum("partial" in p for p in problems)
        assert problems == [], f"after kill {kill + 1} (phases so far {dict(phases)}): {problems}"

    temp_before = _temp_entries(store)
    removed = ModelStore(root, stale_after_s=0).clean_stale(SYMBOL, INTERVAL)
    temp_after = _temp_entries(store)
    final = new_version(datetime(2031, 1, 1, tzinfo=UTC))
    store.publish(_manifest(final), src, keep=KEEP)

    report = (
        f"kills per phase {dict(phases)}, partial versions listed {partial_listed}, "
        f"temp entries before clean {len(temp_before)}, after {len(temp_after)}"
    )
    print(report)
    assert sorted(removed) == temp_before, report
    assert temp_after == [], report
    assert phases["prune"] + phases["idle"] > 0 and phases["publish"] > 0, report
    assert store.latest(SYMBOL, INTERVAL) == final
    assert _violations(store, pinned) == []
    assert store.versions(SYMBOL, INTERVAL)[-1] == final and pinned in store.versions(SYMBOL, INTERVAL)
