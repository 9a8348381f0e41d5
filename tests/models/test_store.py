"""The model store contract: atomic publication, LATEST, PINNED, checksums, retention, stale cleanup."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from store_fault_harness import manifest_for

from cse_models.errors import StoreError, UnknownNameError
from cse_models.store import LATEST, MANIFEST, PINNED, Manifest, ModelStore, is_version, new_version, open_store
from cse_models.store import local as store_module


def _manifest(version: str | None = None) -> Manifest:
    return manifest_for(version or new_version())


def _publish(store: ModelStore, tmp_path: Path, payload: bytes = b"onnx-bytes", second: int = 0, **kw) -> Manifest:
    src = tmp_path / f"src-{payload.hex()[:8]}.onnx"
    src.write_bytes(payload)
    manifest = _manifest(new_version(datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC)))
    store.publish(manifest, {"model.onnx": src}, **kw)
    return manifest


def test_publish_writes_files_with_sha256_and_points_latest(tmp_path):
    store = open_store(tmp_path / "store")
    manifest = _publish(store, tmp_path)
    assert store.latest("BTCUSDT", "1h") == manifest.version
    stored, root = store.verified("BTCUSDT", "1h", manifest.version)
    assert (root / "model.onnx").read_bytes() == b"onnx-bytes"
    assert set(stored.files) == {"model.onnx"}
    assert store.series() == [("BTCUSDT", "1h")]


def test_versions_sort_by_time_and_are_unique():
    a, b = new_version(), new_version()
    assert a != b and is_version(a) and is_version(b)
    assert not is_version("../../etc")


def test_a_corrupted_file_fails_verification(tmp_path):
    store = open_store(tmp_path / "store")
    manifest = _publish(store, tmp_path)
    path = store.version_dir("BTCUSDT", "1h", manifest.version) / "model.onnx"
    path.write_bytes(b"onnx-bytez")
    with pytest.raises(StoreError, match="sha256"):
        store.verified("BTCUSDT", "1h", manifest.version)


def test_a_half_written_version_is_invisible_and_latest_is_unchanged(tmp_path):
    store = open_store(tmp_path / "store")
    first = _publish(store, tmp_path)
    half = store.series_dir("BTCUSDT", "1h") / f".tmp-{new_version()}"
    half.mkdir()
    (half / "model.onnx").write_bytes(b"partial")
    assert store.versions("BTCUSDT", "1h") == [first.version]
    assert store.latest("BTCUSDT", "1h") == first.version


def test_failed_publication_leaves_no_trace(tmp_path):
    store = open_store(tmp_path / "store")
    first = _publish(store, tmp_path)
    with pytest.raises(FileNotFoundError):
        store.publish(_manifest(), {"model.onnx": tmp_path / "missing.onnx"})
    series = store.series_dir("BTCUSDT", "1h")
    assert sorted(p.name for p in series.iterdir()) == sorted([first.version, LATEST])


def test_retention_keeps_the_newest_n(tmp_path):
    store = open_store(tmp_path / "store")
    published = [_publish(store, tmp_path, payload=bytes([i]) * 4, second=i, keep=2).version for i in range(4)]
    assert store.versions("BTCUSDT", "1h") == published[-2:]


def test_a_manifest_with_another_schema_version_is_refused(tmp_path):
    store = open_store(tmp_path / "store")
    manifest = _publish(store, tmp_path)
    path = store.version_dir("BTCUSDT", "1h", manifest.version) / MANIFEST
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "schema_version": 2}))
    with pytest.raises(StoreError, match="schema_version"):
        store.read_manifest("BTCUSDT", "1h", manifest.version)


def _write_manifestless_version(store: ModelStore) -> Path:
    """The state an in-place rmtree killed after deleting manifest.json leaves behind."""
    half = store.version_dir("BTCUSDT", "1h", new_version(datetime(2025, 1, 1, tzinfo=UTC)))
    half.mkdir(parents=True)
    (half / "model.onnx").write_bytes(b"left behind")
    return half


def test_versions_skip_a_directory_without_manifest(tmp_path):
    store = open_store(tmp_path / "store")
    first = _publish(store, tmp_path)
    _write_manifestless_version(store)
    assert store.versions("BTCUSDT", "1h") == [first.version]


def test_a_pinned_version_survives_retention(tmp_path):
    store = open_store(tmp_path / "store")
    published = [_publish(store, tmp_path, payload=bytes([1]) * 4, second=1).version]
    store.pin("BTCUSDT", "1h", published[0])
    published += [_publish(store, tmp_path, payload=bytes([i]) * 4, second=i, keep=2).version for i in range(2, 6)]
    assert store.versions("BTCUSDT", "1h") == [published[0], *published[-2:]]
    assert (store.series_dir("BTCUSDT", "1h") / PINNED).read_text() == published[0] + "\n"
    store.verified("BTCUSDT", "1h", published[0])


def test_pinned_reads_the_pin_back_and_unpin_removes_it(tmp_path):
    store = open_store(tmp_path / "store")
    first = _publish(store, tmp_path, second=1)
    _publish(store, tmp_path, payload=b"second", second=2)
    assert store.pinned("BTCUSDT", "1h") is None
    store.pin("BTCUSDT", "1h", first.version)
    assert store.pinned("BTCUSDT", "1h") == first.version
    assert open_store(tmp_path / "store").pinned("BTCUSDT", "1h") == first.version  # a restart sees it
    assert store.unpin("BTCUSDT", "1h") is True
    assert store.pinned("BTCUSDT", "1h") is None
    assert store.unpin("BTCUSDT", "1h") is False


def test_pin_of_an_unknown_version_is_refused(tmp_path):
    store = open_store(tmp_path / "store")
    _publish(store, tmp_path)
    with pytest.raises(UnknownNameError, match="no version"):
        store.pin("BTCUSDT", "1h", new_version(datetime(2020, 1, 1, tzinfo=UTC)))
    with pytest.raises(StoreError, match="not a store version"):
        store.pin("BTCUSDT", "1h", "../../etc")
    assert store.pinned("BTCUSDT", "1h") is None


def test_pin_of_an_incomplete_version_is_refused(tmp_path):
    store = open_store(tmp_path / "store")
    _publish(store, tmp_path)
    half = _write_manifestless_version(store)
    with pytest.raises(UnknownNameError):
        store.pin("BTCUSDT", "1h", half.name)


def test_garbage_in_pinned_is_a_store_error(tmp_path):
    store = open_store(tmp_path / "store")
    _publish(store, tmp_path)
    (store.series_dir("BTCUSDT", "1h") / PINNED).write_text("not-a-version\n")
    with pytest.raises(StoreError, match="not a version"):
        store.pinned("BTCUSDT", "1h")


def test_series_lists_a_series_that_only_has_a_pin(tmp_path):
    store = open_store(tmp_path / "store")
    manifest = _publish(store, tmp_path)
    store.pin("BTCUSDT", "1h", manifest.version)
    (store.series_dir("BTCUSDT", "1h") / LATEST).unlink()
    assert store.series() == [("BTCUSDT", "1h")]


def test_clean_stale_removes_old_temp_entries_and_keeps_fresh_ones(tmp_path):
    store = open_store(tmp_path / "store", stale_after_s=60)
    manifest = _publish(store, tmp_path)
    series = store.series_dir("BTCUSDT", "1h")
    old_tmp, fresh_tmp = series / f".tmp-{new_version()}", series / f".tmp-{new_version()}"
    for tmp in (old_tmp, fresh_tmp):
        (tmp / "members").mkdir(parents=True)
        (tmp / "members" / "a.onnx").write_bytes(b"partial")
    old_latest, fresh_pinned = series / ".LATEST.0badc0de.tmp", series / ".PINNED.0badc0de.tmp"
    old_latest.write_text("x")
    fresh_pinned.write_text("x")
    trash = series / f".trash-{new_version()}-0badc0de"
    trash.mkdir()
    (trash / "model.onnx").write_bytes(b"being deleted")
    an_hour_ago = time.time() - 3600
    for path in (old_tmp, old_tmp / "members", old_tmp / "members" / "a.onnx", old_latest):
        os.utime(path, (an_hour_ago, an_hour_ago))

    removed = store.clean_stale("BTCUSDT", "1h")

    assert sorted(removed) == sorted([old_tmp.name, old_latest.name, trash.name])
    assert sorted(p.name for p in series.iterdir()) == sorted(
        [manifest.version, LATEST, fresh_tmp.name, fresh_pinned.name]
    )
    assert sorted(open_store(tmp_path / "store", stale_after_s=0).clean_stale("BTCUSDT", "1h")) == sorted(
        [fresh_tmp.name, fresh_pinned.name]
    )


def test_a_temp_directory_still_being_written_is_not_stale(tmp_path):
    """The age of a temp directory is its newest entry's: a publisher copying a big file deep inside
    members/ leaves the top directory's mtime old, yet it is still at work."""
    store = open_store(tmp_path / "store", stale_after_s=60)
    _publish(store, tmp_path)
    busy = store.series_dir("BTCUSDT", "1h") / f".tmp-{new_version()}"
    (busy / "members").mkdir(parents=True)
    (busy / "members" / "big.onnx").write_bytes(b"still copying")
    an_hour_ago = time.time() - 3600
    for path in (busy, busy / "members"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    assert store.clean_stale("BTCUSDT", "1h") == []
    assert busy.is_dir()


def test_clean_stale_removes_an_old_manifestless_version(tmp_path):
    store = open_store(tmp_path / "store", stale_after_s=0)
    first = _publish(store, tmp_path)
    half = _write_manifestless_version(store)
    assert store.clean_stale("BTCUSDT", "1h") == [half.name]
    assert sorted(p.name for p in store.series_dir("BTCUSDT", "1h").iterdir()) == sorted([first.version, LATEST])


def test_publish_cleans_stale_entries_first(tmp_path):
    store = open_store(tmp_path / "store", stale_after_s=0)
    _publish(store, tmp_path, second=1)
    series = store.series_dir("BTCUSDT", "1h")
    (series / f".tmp-{new_version()}").mkdir()
    (series / ".LATEST.0badc0de.tmp").write_text("x")
    second = _publish(store, tmp_path, payload=b"second", second=2)
    assert not [p.name for p in series.iterdir() if p.name.startswith(".")]
    assert store.latest("BTCUSDT", "1h") == second.version


def test_prune_moves_a_version_out_of_sight_before_deleting_it(tmp_path, monkeypatch):
    """A kill in the middle of deleting (simulated: rmtree dies after its first unlink) leaves the
    version already renamed away: nothing half-deleted is listed, and the trash goes on the next clean."""
    store = open_store(tmp_path / "store")
    published = [_publish(store, tmp_path, payload=bytes([i]) * 4, second=i).version for i in range(3)]

    def killed_rmtree(path, *args, **kwargs):
        next(p for p in Path(path).rglob("*") if p.is_file()).unlink()
        raise KeyboardInterrupt("killed mid-delete")

    monkeypatch.setattr(store_module.shutil, "rmtree", killed_rmtree)
    with pytest.raises(KeyboardInterrupt):
        store.prune("BTCUSDT", "1h", keep=1)
    monkeypatch.undo()
    listed = store.versions("BTCUSDT", "1h")
    assert published[0] not in listed and published[2] in listed
    for version in listed:
        store.verified("BTCUSDT", "1h", version)
    trash = [p.name for p in store.series_dir("BTCUSDT", "1h").iterdir() if p.name.startswith(".trash-")]
    assert trash
    assert sorted(store.clean_stale("BTCUSDT", "1h")) == sorted(trash)


def test_a_pin_written_while_pruning_gets_its_version_back(tmp_path, monkeypatch):
    """Prune reads PINNED before it starts and again after each rename to trash: a pin that arrives in
    between renames its version back instead of losing it."""
    store = open_store(tmp_path / "store")
    published = [_publish(store, tmp_path, payload=bytes([i]) * 4, second=i).version for i in range(3)]
    reads = iter([None])
    monkeypatch.setattr(ModelStore, "pinned", lambda self, symbol, interval: next(reads, published[0]))
    assert store.prune("BTCUSDT", "1h", keep=1) == [published[1]]
    monkeypatch.undo()
    assert store.versions("BTCUSDT", "1h") == [published[0], published[2]]
    store.verified("BTCUSDT", "1h", published[0])


def test_a_pin_that_loses_to_a_concurrent_prune_fails_and_restores_the_previous_pin(tmp_path, monkeypatch):
    store = open_store(tmp_path / "store")
    first = _publish(store, tmp_path, second=1).version
    second = _publish(store, tmp_path, payload=b"second", second=2).version
    store.pin("BTCUSDT", "1h", second)
    write_atomic = store_module._write_atomic

    def prune_wins(path: Path, text: str) -> None:
        if text == first + "\n":  # the other process trashes `first` just before PINNED names it
            os.rename(path.parent / first, path.parent / f".trash-{first}-0badc0de")
        write_atomic(path, text)

    monkeypatch.setattr(store_module, "_write_atomic", prune_wins)
    with pytest.raises(UnknownNameError, match="no version"):
        store.pin("BTCUSDT", "1h", first)
    assert store.pinned("BTCUSDT", "1h") == second


def test_a_garbage_pointer_fails_publication_before_anything_is_written(tmp_path):
    store = open_store(tmp_path / "store")
    first = _publish(store, tmp_path, second=1)
    series = store.series_dir("BTCUSDT", "1h")
    (series / PINNED).write_text("garbage\n")
    with pytest.raises(StoreError, match="not a version"):
        _publish(store, tmp_path, payload=b"second", second=2)
    assert sorted(p.name for p in series.iterdir()) == sorted([first.version, LATEST, PINNED])
