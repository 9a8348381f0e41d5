"""A publisher that publishes into a model store until it is killed: the subject of test_store_faults.

It imports cse_models.store only (no jax), so it starts in a tenth of a second. Before each phase it
prints a marker line, flushed, so the test knows in which phase each SIGKILL landed: the last marker a
killed process printed names the phase it died in.

    python store_publisher_proc.py ROOT SOURCE_DIR KEEP FIRST_SECOND [SLOW_UNLINK_S]

SLOW_UNLINK_S > 0 models a slow disk: every unlink waits that long first, so a pruning phase (one
rmtree) lasts long enough for a kill from another process to land inside it as often as in a publish.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cse_models.store import Manifest, ModelStore, TensorSpec, new_version

SYMBOL, INTERVAL = "BTCUSDT", "1h"


class MarkedStore(ModelStore):
    """A ModelStore that announces its phases on stdout."""

    def clean_stale(self, symbol: str, interval: str) -> list[str]:
        print("clean", flush=True)
        removed = super().clean_stale(symbol, interval)
        print("publish", flush=True)
        return removed

    def prune(self, symbol: str, interval: str, *, keep: int, pinned: tuple[str, ...] = ()) -> list[str]:
        print("prune", flush=True)
        removed = super().prune(symbol, interval, keep=keep, pinned=pinned)
        print("idle", flush=True)
        return removed


def manifest(version: str) -> Manifest:
    return Manifest(
        symbol=SYMBOL,
        interval=INTERVAL,
        version=version,
        created_at=datetime.now(UTC).isoformat(),
        task="regression",
        feature_set="mur9",
        feature_names=["close"],
        seq_len=24,
        horizon=1,
        warmup=0,
        inputs=[TensorSpec("features", "float32", ["batch", 24, 1])],
        outputs=[TensorSpec("close", "float32", ["batch", 1])],
    )


def slow_unlinks(delay_s: float) -> None:
    unlink = os.unlink

    def slow_unlink(*args, **kwargs):
        time.sleep(delay_s)
        return unlink(*args, **kwargs)

    os.unlink = slow_unlink


def main(root: str, source: str, keep: str, first_second: str, slow_unlink_s: str = "0") -> None:
    if float(slow_unlink_s) > 0:
        slow_unlinks(float(slow_unlink_s))
    store = MarkedStore(root)
    files = {p.relative_to(source).as_posix(): p for p in sorted(Path(source).rglob("*")) if p.is_file()}
    start = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=int(first_second))
    print("ready", flush=True)
    for i in range(1_000_000):
        print("publish", flush=True)
        store.publish(manifest(new_version(start + timedelta(seconds=i))), files, keep=int(keep))


if __name__ == "__main__":
    main(*sys.argv[1:])
