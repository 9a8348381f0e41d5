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

from store_fault_harness import manifest_for

from cse_models.store import LocalModelStore, new_version


class PhaseMarkers:
    """Mixed into a store: announces its phases on stdout, so the test knows where a kill lands."""

    def clean_stale(self, symbol: str, interval: str) -> list[str]:
        print("clean", flush=True)
        removed = super().clean_stale(symbol, interval)  # type: ignore[misc]
        print("publish", flush=True)
        return removed

    def prune(self, symbol: str, interval: str, *, keep: int, pinned: tuple[str, ...] = ()) -> list[str]:
        print("prune", flush=True)
        removed = super().prune(symbol, interval, keep=keep, pinned=pinned)  # type: ignore[misc]
        print("idle", flush=True)
        return removed


class MarkedStore(PhaseMarkers, LocalModelStore):
    """A LocalModelStore that announces its phases."""


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
        store.publish(manifest_for(new_version(start + timedelta(seconds=i))), files, keep=int(keep))


if __name__ == "__main__":
    main(*sys.argv[1:])
