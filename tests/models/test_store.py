"""The model store contract: atomic publication, LATEST, checksums, retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cse_models.errors import StoreError
from cse_models.store import LATEST, MANIFEST, Manifest, ModelStore, TensorSpec, is_version, new_version


def _manifest(version: str | None = None) -> Manifest:
    return Manifest(
        symbol="BTCUSDT",
        interval="1h",
        version=version or new_version(),
        created_at="2026-01-01T00:00:00+00:00",
        task="regression",
        feature_set="mur9",
        feature_names=["close"],
        seq_len=24,
        horizon=1,
        warmup=0,
        inputs=[TensorSpec("features", "float32", ["batch", 24, 1])],
        outputs=[TensorSpec("close", "float32", ["batch", 1])],
    )


def _publish(store: ModelStore, tmp_path: Path, payload: bytes = b"onnx-bytes", second: int = 0, **kw) -> Manifest:
    src = tmp_path / f"src-{payload.hex()[:8]}.onnx"
    src.write_bytes(payload)
    manifest = _manifest(new_version(datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC)))
    store.publish(manifest, {"model.onnx": src}, **kw)
    return manifest


def test_publish_writes_files_with_sha256_and_points_latest(tmp_path):
    store = ModelStore(tmp_path / "store")
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
    store = ModelStore(tmp_path / "store")
    manifest = _publish(store, tmp_path)
    path = store.version_dir("BTCUSDT", "1h", manifest.version) / "model.onnx"
    path.write_bytes(b"onnx-bytez")
    with pytest.raises(StoreError, match="sha256"):
        store.verified("BTCUSDT", "1h", manifest.version)


def test_a_half_written_version_is_invisible_and_latest_is_unchanged(tmp_path):
    store = ModelStore(tmp_path / "store")
    first = _publish(store, tmp_path)
    half = store.series_dir("BTCUSDT", "1h") / f".tmp-{new_version()}"
    half.mkdir()
    (half / "model.onnx").write_bytes(b"partial")
    assert store.versions("BTCUSDT", "1h") == [first.version]
    assert store.latest("BTCUSDT", "1h") == first.version


def test_failed_publication_leaves_no_trace(tmp_path):
    store = ModelStore(tmp_path / "store")
    first = _publish(store, tmp_path)
    with pytest.raises(FileNotFoundError):
        store.publish(_manifest(), {"model.onnx": tmp_path / "missing.onnx"})
    series = store.series_dir("BTCUSDT", "1h")
    assert sorted(p.name for p in series.iterdir()) == sorted([first.version, LATEST])


def test_retention_keeps_the_newest_n(tmp_path):
    store = ModelStore(tmp_path / "store")
    published = [_publish(store, tmp_path, payload=bytes([i]) * 4, second=i, keep=2).version for i in range(4)]
    assert store.versions("BTCUSDT", "1h") == published[-2:]


def test_a_manifest_with_another_schema_version_is_refused(tmp_path):
    store = ModelStore(tmp_path / "store")
    manifest = _publish(store, tmp_path)
    path = store.version_dir("BTCUSDT", "1h", manifest.version) / MANIFEST
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "schema_version": 2}))
    with pytest.raises(StoreError, match="schema_version"):
        store.read_manifest("BTCUSDT", "1h", manifest.version)
