"""The model store on S3 (moto's server on 127.0.0.1, started here): the same contract as the local
store — publication, listing, LATEST, pins, retention, sha256 checks through the local cache — and a
publisher SIGKILLed at random moments never leaves a partial version visible or LATEST incomplete — and
some of those kills are shown to have landed mid-write (they left a version without manifest or a
`.pruning` claim), so the kill test cannot pass on kills that all fell between writes."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from moto_s3 import running_moto_s3
from store_fault_harness import INTERVAL, SYMBOL, manifest_for, published_files, run_and_kill, violations

from cse_models.errors import StoreError, UnknownNameError
from cse_models.store import MANIFEST, ModelStore, new_version, open_store
from cse_models.store.objects import PRUNING, ObjectModelStore

PUBLISHER = Path(__file__).with_name("store_s3_publisher_proc.py")
KILLS = 10
KEEP = 2


@pytest.fixture(scope="module")
def moto():
    with running_moto_s3() as s3:
        yield s3


@pytest.fixture
def s3_url(moto, monkeypatch, tmp_path) -> str:
    """A fresh prefix in the bucket; endpoint, credentials and cache from the environment."""
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CSE_STORE_CACHE", str(tmp_path / "cache"))
    return moto.url(f"store-{secrets.token_hex(4)}")


def _publish(store: ModelStore, tmp_path: Path, payload: bytes, second: int, keep: int = 5) -> str:
    src = tmp_path / f"src-{second}.onnx"
    src.write_bytes(payload)
    version = new_version(datetime(2030, 1, 1, 0, 0, second, tzinfo=UTC))
    store.publish(manifest_for(version), {"model.onnx": src}, keep=keep)
    return version


def test_s3_store_publishes_lists_and_serves_verified_files_from_a_local_cache(s3_url, tmp_path):
    store = open_store(s3_url)
    assert isinstance(store, ObjectModelStore)
    first = _publish(store, tmp_path, b"first", 1)
    second = _publish(store, tmp_path, b"second", 2)
    assert store.versions(SYMBOL, INTERVAL) == [first, second]
    assert store.latest(SYMBOL, INTERVAL) == second
    assert store.series() == [(SYMBOL, INTERVAL)]
    manifest, local = store.verified(SYMBOL, INTERVAL, second)
    assert isinstance(local, Path) and (local / "model.onnx").read_bytes() == b"second"
    assert manifest.files.keys() == {"model.onnx"}

    (local / "model.onnx").write_bytes(b"damaged in the cache")  # a hit is hashed again, not trusted
    assert (store.verified(SYMBOL, INTERVAL, second)[1] / "model.onnx").read_bytes() == b"second"

    store.fs.pipe_file(f"{store._key(SYMBOL, INTERVAL, first)}/model.onnx", b"corrupt")
    with pytest.raises(StoreError, match="sha256"):
        store.verified(SYMBOL, INTERVAL, first)


def test_s3_pin_survives_retention_and_unpin_removes_it(s3_url, tmp_path):
    store = open_store(s3_url)
    published = [_publish(store, tmp_path, bytes([i]) * 8, i, keep=10) for i in range(3)]
    store.pin(SYMBOL, INTERVAL, published[0])
    with pytest.raises(UnknownNameError, match="no version"):
        store.pin(SYMBOL, INTERVAL, new_version())
    cached = store.verified(SYMBOL, INTERVAL, published[1])[1]
    assert store.prune(SYMBOL, INTERVAL, keep=1) == [published[1]]
    assert store.versions(SYMBOL, INTERVAL) == [published[0], published[2]]
    assert store.pinned(SYMBOL, INTERVAL) == published[0]
    store.verified(SYMBOL, INTERVAL, published[0])
    assert not cached.exists()  # the cached copy of a pruned version is evicted at the next load
    assert store.unpin(SYMBOL, INTERVAL) and not store.unpin(SYMBOL, INTERVAL)
    assert store.prune(SYMBOL, INTERVAL, keep=1) == [published[0]]
    assert not store._objects(SYMBOL, INTERVAL, published[0])


def test_s3_a_pin_written_while_pruning_gets_its_manifest_back(s3_url, tmp_path, monkeypatch):
    store = open_store(s3_url)
    published = [_publish(store, tmp_path, bytes([i]) * 8, i, keep=10) for i in range(3)]
    reads = iter([None])
    monkeypatch.setattr(ObjectModelStore, "pinned", lambda self, symbol, interval: next(reads, published[0]))
    assert store.prune(SYMBOL, INTERVAL, keep=1) == [published[1]]
    monkeypatch.undo()
    assert store.versions(SYMBOL, INTERVAL) == [published[0], published[2]]
    assert PRUNING not in store._objects(SYMBOL, INTERVAL, published[0])
    store.verified(SYMBOL, INTERVAL, published[0])


def test_s3_a_version_without_manifest_is_invisible_and_cleaned_once_stale(s3_url, tmp_path):
    store = open_store(s3_url)
    first = _publish(store, tmp_path, b"first", 1)
    half = new_version()
    store.fs.pipe_file(f"{store._key(SYMBOL, INTERVAL, half)}/model.onnx", b"partial")
    assert store.versions(SYMBOL, INTERVAL) == [first]
    assert store.clean_stale(SYMBOL, INTERVAL) == []  # young: maybe a publisher still uploading
    assert ObjectModelStore(s3_url, stale_after_s=0).clean_stale(SYMBOL, INTERVAL) == [half]
    assert not store._objects(SYMBOL, INTERVAL, half)
    assert store.latest(SYMBOL, INTERVAL) == first


def _leftovers(store: ObjectModelStore) -> dict[str, str]:
    """What killed writers leave, version prefix → kind: a `.pruning` claim (a pruner killed), else a
    version without manifest (a publisher killed mid-upload)."""
    objects = store._objects(SYMBOL, INTERVAL)
    prefixes = {rel.split("/")[0] for rel in objects if "/" in rel}
    return {
        p: "pruning" if f"{p}/{PRUNING}" in objects else "no manifest"
        for p in sorted(prefixes)
        if f"{p}/{MANIFEST}" not in objects or f"{p}/{PRUNING}" in objects
    }


def test_s3_publisher_killed_at_10_random_points_leaves_no_partial_version_visible(s3_url, tmp_path):
    rng = random.Random(20261214)
    src = published_files(tmp_path / "src", rng)
    store = open_store(s3_url)
    pinned = new_version(datetime(2029, 1, 1, tzinfo=UTC))
    store.publish(manifest_for(pinned), src, keep=KEEP)
    store.pin(SYMBOL, INTERVAL, pinned)
    phases: Counter[str] = Counter()
    left: Counter[str] = Counter()  # kills that left a leftover of each kind: they landed mid-write
    for kill in range(KILLS):
        target = "prune" if kill % 2 else "publish"
        args = [s3_url, str(tmp_path / "src"), str(KEEP), str(kill * 100_000)]
        before = _leftovers(store)
        phases[run_and_kill(PUBLISHER, args, target, skip=rng.randint(0, 1), delay_s=rng.uniform(0, 0.15))] += 1
        left.update({kind for name, kind in _leftovers(store).items() if name not in before})
        problems = violations(store, pinned)
        assert problems == [], f"after kill {kill + 1} (phases so far {dict(phases)}): {problems}"

    leftovers = sorted(_leftovers(store))
    removed = ObjectModelStore(s3_url, stale_after_s=0).clean_stale(SYMBOL, INTERVAL)
    final = new_version(datetime(2031, 1, 1, tzinfo=UTC))
    store.publish(manifest_for(final), src, keep=KEEP)
    report = f"kills per phase {dict(phases)}, kills that left each kind {dict(left)}, leftovers {leftovers}"
    print(report)
    assert left.total() > 0, f"no kill landed mid-write: {report}"
    assert sorted(removed) == leftovers, report
    assert _leftovers(store) == {}, report
    assert store.latest(SYMBOL, INTERVAL) == final
    assert violations(store, pinned) == []
    assert store.versions(SYMBOL, INTERVAL)[-1] == final and pinned in store.versions(SYMBOL, INTERVAL)
