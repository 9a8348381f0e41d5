"""The store under SIGKILL: a publisher killed at 20 random points, in publish and in prune.

After every kill the store must hold only complete versions (each listed version passes its sha256
check), LATEST must name a complete version and the pinned version must still be there. A kill proves
something only when it lands mid-write: the test counts the kills that left a `.tmp-*` publication or a
`.trash-*` prune behind and requires both kinds, so a run whose kills all landed between writes fails. The publisher
is a separate process (store_publisher_proc.py, stdlib + cse_models.store only), killed with SIGKILL
so that no `finally` or `except` in the store gets to tidy up.

A positive control shows the invariant check catches what the old in-place `rmtree` prune left behind.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from store_fault_harness import INTERVAL, SYMBOL, manifest_for, published_files, run_and_kill, violations

from cse_models.store import MANIFEST, PINNED, ModelStore, new_version, open_store

PUBLISHER = Path(__file__).with_name("store_publisher_proc.py")
KILLS = 20
KEEP = 2
SLOW_UNLINK_S = "0.0005"  # widens prune (one unlink per file) to about publish's length; see the publisher
TEMP_PREFIXES = (".tmp-", ".trash-", f".{PINNED}.", ".LATEST.")


def _temp_entries(store: ModelStore) -> list[str]:
    series = store.series_dir(SYMBOL, INTERVAL)
    return sorted(p.name for p in series.iterdir() if p.name.startswith(TEMP_PREFIXES))


def _left_behind(new_entries: set[str]) -> set[str]:
    """The kinds of entry a kill left: the prefix of each new temporary name (`.tmp-`, `.trash-`, …)."""
    return {next(prefix for prefix in TEMP_PREFIXES if name.startswith(prefix)) for name in new_entries}


def test_the_invariant_check_catches_a_prune_killed_mid_rmtree(tmp_path):
    """Positive control: the state an in-place rmtree leaves when killed after deleting some files
    (here model.onnx, while manifest.json remains) is listed, and the check reports it."""
    store = open_store(tmp_path / "store")
    src = published_files(tmp_path / "src", random.Random(0))
    versions = [new_version(datetime(2030, 1, 1, 0, 0, i, tzinfo=UTC)) for i in range(3)]
    for version in versions:
        store.publish(manifest_for(version), src, keep=10)
    store.pin(SYMBOL, INTERVAL, versions[1])
    assert violations(store, versions[1]) == []
    half_deleted = store.version_dir(SYMBOL, INTERVAL, versions[0])
    (half_deleted / "model.onnx").unlink()
    assert (half_deleted / MANIFEST).is_file()
    assert any(f"listed version {versions[0]} is partial" in v for v in violations(store, versions[1]))
    (store.version_dir(SYMBOL, INTERVAL, versions[1]) / "members" / "m00.onnx").unlink()
    assert any("the pinned version" in v for v in violations(store, versions[1]))


def test_publisher_killed_at_20_random_points_leaves_the_store_consistent(tmp_path):
    rng = random.Random(20261214)
    root = tmp_path / "store"
    src = published_files(tmp_path / "src", rng)
    store = open_store(root)
    pinned = new_version(datetime(2029, 1, 1, tzinfo=UTC))
    store.publish(manifest_for(pinned), src, keep=KEEP)
    (store.series_dir(SYMBOL, INTERVAL) / PINNED).write_text(pinned + "\n")

    phases: Counter[str] = Counter()
    left: Counter[str] = Counter()  # kills that left a temporary entry of each kind: they landed mid-write
    for kill in range(KILLS):
        target = "prune" if kill % 2 else "publish"
        delay_s = rng.uniform(0, 0.02)
        args = [str(root), str(tmp_path / "src"), str(KEEP), str(kill * 100_000), SLOW_UNLINK_S]
        before = set(_temp_entries(store))
        phases[run_and_kill(PUBLISHER, args, target, skip=rng.randint(0, 2), delay_s=delay_s)] += 1
        left.update(_left_behind(set(_temp_entries(store)) - before))
        problems = violations(store, pinned)
        assert problems == [], f"after kill {kill + 1} (phases so far {dict(phases)}): {problems}"

    temp_before = _temp_entries(store)
    removed = open_store(root, stale_after_s=0).clean_stale(SYMBOL, INTERVAL)
    temp_after = _temp_entries(store)
    final = new_version(datetime(2031, 1, 1, tzinfo=UTC))
    store.publish(manifest_for(final), src, keep=KEEP)

    report = (
        f"kills per phase {dict(phases)}, kills that left each kind of entry {dict(left)}, "
        f"temp entries before clean {len(temp_before)}, after {len(temp_after)}"
    )
    print(report)
    assert left[".tmp-"] > 0 and left[".trash-"] > 0, f"no kill landed mid-publish or mid-prune: {report}"
    assert sorted(removed) == temp_before, report
    assert temp_after == [], report
    assert store.latest(SYMBOL, INTERVAL) == final
    assert violations(store, pinned) == []
    assert store.versions(SYMBOL, INTERVAL)[-1] == final and pinned in store.versions(SYMBOL, INTERVAL)
